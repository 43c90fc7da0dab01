"""Reading and writing photos: modes, orientation, metadata, damage, safe saving."""

from __future__ import annotations

import errno
import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from dgp_engine.errors import InputError
from dgp_engine.files.photos import (
    OutputError,
    Photo,
    box_mask,
    check_mask,
    decode_image,
    icc_colour_space,
    read_image,
    read_mask,
    save_image,
)

from .task_helpers import photo_array


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_rgb_png_round_trip_is_exact(tmp_path):
    arr = photo_array(12, 17)
    Image.fromarray(arr).save(tmp_path / "in.png")
    photo = read_image(tmp_path / "in.png")
    assert photo.size == (17, 12) and photo.rgb.dtype == np.float32
    assert photo.alpha is None and photo.bit_depth == 8
    save_image(photo, tmp_path / "out.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), arr)


def test_exif_orientation_is_applied_and_reset(tmp_path):
    arr = np.zeros((4, 6, 3), np.uint8)
    arr[0, 0] = 255  # marker top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    exif[0x010F] = "TestCam"
    Image.fromarray(arr).save(tmp_path / "o.png", exif=exif.tobytes())
    photo = read_image(tmp_path / "o.png")
    assert photo.size == (4, 6)  # width and height swapped
    assert photo.rgb[0, -1].min() == 1.0  # marker now top-right
    save_image(photo, tmp_path / "out.png")
    out_exif = Image.open(tmp_path / "out.png").getexif()
    assert out_exif.get(0x010F) == "TestCam"
    assert out_exif.get(0x0112, 1) == 1


def test_sixteen_bit_grayscale():
    a = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    photo = decode_image(buf.getvalue())
    assert photo.bit_depth == 16 and photo.is_gray
    assert np.allclose(photo.rgb[..., 0], a / 65535.0, atol=1e-6)


def test_cmyk_palette_la_rgba_modes():
    buf = io.BytesIO()
    Image.new("CMYK", (5, 4), (255, 0, 0, 0)).save(buf, "JPEG")
    cyan = decode_image(buf.getvalue()).rgb
    assert cyan[..., 0].mean() < 0.2 and cyan[..., 1:].mean() > 0.8

    pal = Image.new("P", (6, 6), 0)
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.putpixel((2, 2), 1)
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=0)
    photo = decode_image(buf.getvalue())
    assert photo.alpha is not None and photo.alpha[2, 2] == 1.0 and photo.alpha[0, 0] == 0.0
    assert np.allclose(photo.rgb[2, 2], np.array([200, 100, 50]) / 255)

    la = Image.fromarray(
        np.dstack([np.full((3, 3), 100, np.uint8), np.full((3, 3), 128, np.uint8)]), "LA"
    )
    buf = io.BytesIO()
    la.save(buf, "PNG")
    photo = decode_image(buf.getvalue())
    assert photo.is_gray and np.allclose(photo.alpha, 128 / 255)

    rgba = np.dstack([photo_array(5, 5), np.arange(25, dtype=np.uint8).reshape(5, 5) * 10])
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    photo = decode_image(buf.getvalue())
    assert np.allclose(photo.alpha * 255, rgba[..., 3])


def test_alpha_and_icc_kept_on_save(tmp_path):
    rgba = np.dstack([photo_array(6, 7), np.full((6, 7), 77, np.uint8)])
    icc = srgb_icc()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png", icc_profile=icc)
    photo = read_image(tmp_path / "a.png")
    assert icc_colour_space(photo.icc_profile) == "RGB"
    save_image(photo, tmp_path / "b.png")
    out = Image.open(tmp_path / "b.png")
    assert out.mode == "RGBA" and out.info.get("icc_profile") == icc
    assert np.array_equal(np.asarray(out), rgba)
    save_image(photo, tmp_path / "c.jpg")  # JPEG cannot hold alpha: dropped, ICC kept
    jpg = Image.open(tmp_path / "c.jpg")
    assert jpg.mode == "RGB" and jpg.info.get("icc_profile") == icc


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty"),
        (b"this is not an image at all" * 10, "not an image"),
    ],
)
def test_unreadable_files_are_refused(tmp_path, content, words):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(InputError, match=words):
        read_image(p)


def test_truncated_and_damaged_files(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(photo_array(64, 64)).save(buf, "PNG")
    data = buf.getvalue()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated|damaged"):
        read_image(tmp_path / "t.png")
    buf = io.BytesIO()
    Image.fromarray(photo_array(64, 64)).save(buf, "JPEG")
    data = buf.getvalue()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated|damaged"):
        read_image(tmp_path / "t.jpg")
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "missing.png")


def test_decompression_bomb_is_refused(tmp_path):
    Image.new("RGB", (40, 40)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="decompression bomb"):
        read_image(tmp_path / "big.png", max_pixels=1000)


def test_never_overwrites_without_permission(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(photo_array(5, 5)).save(src)
    before = src.read_bytes()
    photo = read_image(src)
    with pytest.raises(OutputError, match="input file"):
        save_image(photo.with_pixels(photo.rgb * 0.5), src)
    assert src.read_bytes() == before
    other = tmp_path / "other.png"
    other.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        save_image(photo, other)
    assert other.read_bytes() == b"keep me"
    save_image(photo, other, overwrite=True)
    assert Image.open(other).size == (5, 5)
    with pytest.raises(OutputError, match="unknown image type"):
        save_image(photo, tmp_path / "out.xyz")


def test_disk_full_leaves_no_file(tmp_path, monkeypatch):
    def full(self, fp, *a, **k):
        fp.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(OutputError, match="disk is full"):
        save_image(Photo.from_array(photo_array(4, 4)), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_masks(tmp_path):
    m = np.zeros((6, 8), np.uint8)
    m[2:4, 3:6] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    hole = read_mask(tmp_path / "m.png", (8, 6))
    assert hole.sum() == 6 and hole[2, 3]
    with pytest.raises(InputError, match="8×6 px but the picture is 9×6"):
        read_mask(tmp_path / "m.png", (9, 6))
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(tmp_path / "black.png")
    with pytest.raises(InputError, match="all black"):
        read_mask(tmp_path / "black.png", (8, 6))
    Image.fromarray(np.full((6, 8), 255, np.uint8)).save(tmp_path / "white.png")
    with pytest.raises(InputError, match="whole picture"):
        read_mask(tmp_path / "white.png", (8, 6))
    strokes = np.zeros((6, 8, 4), np.uint8)
    strokes[1, 1] = (255, 0, 0, 255)  # red stroke on a transparent layer
    Image.fromarray(strokes, "RGBA").save(tmp_path / "s.png")
    assert read_mask(tmp_path / "s.png", (8, 6)).sum() == 1
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_mask(tmp_path / "empty.png", (8, 6))
    with pytest.raises(InputError, match="no pixels"):
        check_mask(np.zeros((0, 0), bool), None)
    assert box_mask((2, 1, 3, 2), (8, 6)).sum() == 6
    with pytest.raises(InputError, match="outside"):
        box_mask((20, 1, 3, 2), (8, 6))
    with pytest.raises(InputError, match="no area"):
        box_mask((2, 1, 0, 2), (8, 6))
