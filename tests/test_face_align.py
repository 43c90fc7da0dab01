"""Face priors (issue 23, item 4): the FFHQ-style aligned crop from three points, the warp
into the model's square and back with a feathered seam, points that cannot be a face
refused with a sentence, the face prior recorded with the install, the optional
detector, and a portrait restored end to end through the command line."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dgp_engine.cli import main
from dgp_engine.errors import FaceNotFoundError, InputError, StateError
from dgp_engine.files.photos import Photo
from dgp_engine.method import face_detect
from dgp_engine.method.face_align import (
    FaceAlignment,
    FacePoints,
    check_face_points,
    parse_face_points,
)
from dgp_engine.method.placement import Placement
from dgp_engine.priors import registry
from dgp_engine.priors.family import alignment_from_name
from dgp_engine.priors.load import load_prior
from dgp_engine.tasks.postprocess import PhotoComposer, compose_into
from dgp_engine.tasks.restore import find_face, placement_of, plan_task, restore_image

from .conftest import REFERENCE

SMALL = REFERENCE / "stylegan2_small"
PKL = SMALL / "nvidia_uncond" / "network-snapshot-000100.pkl"  # 64 px, unconditional
QUICK = (
    'family = "stylegan2"\ntruncation_psi = 0.7\niterations = [2]\nft_num = [1]\n'
    "G_lrs = [1e-3]\nz_lrs = [1e-2]\nw_D_loss = [1]\nw_mse = [1]\nselect_num = 2\n"
    "sample_std = 1.0\n"
)


def level_face() -> FacePoints:
    return FacePoints((100.0, 100.0), (140.0, 100.0), (120.0, 145.0))


def rotate(p: tuple[float, float], deg: float, c: tuple[float, float]) -> tuple[float, float]:
    a = math.radians(deg)
    dx, dy = p[0] - c[0], p[1] - c[1]
    return (c[0] + dx * math.cos(a) - dy * math.sin(a), c[1] + dx * math.sin(a) + dy * math.cos(a))


def smooth_photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smooth colour picture (sums of low-frequency waves), float [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        for _ in range(3):
            fx, fy, ph = rng.uniform(0.005, 0.03), rng.uniform(0.005, 0.03), rng.uniform(0, 6)
            out[..., c] += np.sin(x * fx * 6.28 + y * fy * 6.28 + ph)
    return ((out / 6 + 0.5).clip(0, 1)).astype(np.float32)


def drawn_face(w: int = 300, h: int = 420) -> tuple[np.ndarray, FacePoints]:
    """A portrait-format picture with a drawn face: skin oval, two eyes, a mouth."""
    img = Image.new("RGB", (w, h), (90, 110, 140))
    d = ImageDraw.Draw(img)
    d.ellipse((80, 110, 220, 300), fill=(225, 185, 160))
    for ex in (125, 175):
        d.ellipse((ex - 12, 178, ex + 12, 194), fill=(250, 250, 250))
        d.ellipse((ex - 5, 181, ex + 5, 191), fill=(60, 40, 30))
    d.ellipse((128, 238, 172, 252), fill=(170, 60, 60))
    return np.asarray(img, np.float32) / 255.0, FacePoints((125, 186), (175, 186), (150, 245))


# --------------------------------------------------------------------------- geometry


def test_the_crop_is_built_from_the_eyes_and_mouth_the_ffhq_way():
    # eyes 40 px apart, mouth 45 px below their midpoint: the half side is the larger of
    # 2 × 40 and 1.8 × 45 = 81, the centre a tenth of the way to the mouth
    face = FaceAlignment.from_points(level_face(), 256)
    assert (face.cx, face.cy) == pytest.approx((120.0, 104.5))
    assert (face.ax, face.ay) == pytest.approx((81.0, 0.0))
    assert face.side == pytest.approx(162.0) and face.angle == pytest.approx(0.0)
    # in the model's square the eyes sit level, symmetric about the centre line
    u, v = face.to_model(np.array([100.0, 140.0, 120.0]), np.array([100.0, 100.0, 145.0]))
    assert u == pytest.approx([128 - 128 * 20 / 81, 128 + 128 * 20 / 81, 128.0])
    assert v == pytest.approx([128 - 128 * 4.5 / 81] * 2 + [128 + 128 * 40.5 / 81])
    # a wide face (eyes far apart, mouth close): the eye distance decides the size
    wide = FaceAlignment.from_points(FacePoints((0, 0), (100, 0), (50, 30)), 64)
    assert wide.side == pytest.approx(400.0)


def test_a_tilted_face_comes_out_upright():
    """A photo turned 30° about the face, with its points turned alike, gives the same
    aligned square as the upright photo."""
    photo = smooth_photo(300, 300, seed=3)
    pts = FacePoints((130.0, 140.0), (170.0, 140.0), (150.0, 185.0))
    centre = (150.0, 150.0)
    upright = FaceAlignment.from_points(pts, 64)
    turned_photo = (
        np.asarray(
            Image.fromarray((photo * 255).astype(np.uint8)).rotate(
                -30, resample=Image.BICUBIC, center=centre
            ),
            np.float32,
        )
        / 255.0
    )
    turned_pts = FacePoints(
        *(rotate(p, 30, centre) for p in (pts.left_eye, pts.right_eye, pts.mouth))
    )
    turned = FaceAlignment.from_points(turned_pts, 64)
    assert turned.angle == pytest.approx(30.0)
    assert turned.side == pytest.approx(upright.side)
    a = upright.to_model_square(photo)
    b = turned.to_model_square(turned_photo)
    inner = slice(8, 56)
    assert np.abs(a[inner, inner] - b[inner, inner]).mean() < 0.01


def test_warping_in_and_back_returns_the_photo_inside_the_square():
    photo = smooth_photo(300, 420)
    pts = FacePoints(*(rotate(p, 12, (150, 200)) for p in ((120, 190), (180, 190), (150, 250))))
    face = FaceAlignment.from_points(pts, 256)
    square = face.to_model_square(photo)
    box = face.box((300, 420))
    back = face.from_model_square(square, box)
    weight = face.seam_weight(box, 8)
    crop = photo[box[1] : box[3], box[0] : box[2]]
    inside = weight >= 1
    assert inside.sum() > 0.5 * weight.size
    assert np.abs(back - crop)[inside].max() < 0.02
    # the weight eases from 0 outside the square to 1 within the seam width
    assert weight.min() == 0.0 and 0 < weight[(weight > 0) & (weight < 1)].size


def test_a_face_much_larger_than_the_model_is_shrunk_without_aliasing():
    """Fine stripes (2 px period) average to grey when an 800 px face goes into 64 px (the
    blur before sampling); plain bicubic sampling would alias them."""
    stripes = np.zeros((1000, 1000, 3), np.float32)
    stripes[:, ::2] = 1.0
    face = FaceAlignment.from_points(FacePoints((400, 450), (600, 450), (500, 660)), 64)
    assert face.blur_sigma == pytest.approx(6.25)  # 800 px into 64: σ = scale / 2
    square = face.to_model_square(stripes)
    assert np.abs(square - 0.5).max() < 0.05


# --------------------------------------------------------------------------- bad points


def test_points_are_parsed_and_bad_text_gets_a_sentence():
    assert parse_face_points("1,2 3,4 5,6") == FacePoints((1, 2), (3, 4), (5, 6))
    assert parse_face_points([(1, 2), (3, 4), (5, 6)]) == FacePoints((1, 2), (3, 4), (5, 6))
    for bad in ("1,2 3,4", "a,b c,d e,f", "1,2 3,4 5,nan", ""):
        with pytest.raises(InputError, match="three x,y pairs — left eye, right eye, mouth"):
            parse_face_points(bad)


def test_points_that_cannot_be_a_face_are_refused():
    size = (300, 420)
    with pytest.raises(InputError, match=r"right eye point 310,100 lies outside the 300×420"):
        check_face_points(FacePoints((100, 100), (310, 100), (150, 150)), size)
    with pytest.raises(InputError, match="The eyes are 1.0 px apart"):
        check_face_points(FacePoints((100, 100), (101, 100), (100, 150)), size)
    with pytest.raises(InputError, match="mouth point lies on the line through the eyes"):
        check_face_points(FacePoints((100, 100), (140, 100), (180, 102)), size)
    with pytest.raises(InputError, match="5.0 eye distances from the eyes"):
        check_face_points(FacePoints((100, 100), (140, 100), (120, 300)), size)


def test_eyes_given_the_other_way_round_are_swapped_with_a_note():
    swapped = FacePoints((140.0, 100.0), (100.0, 100.0), (120.0, 145.0))
    points, notes = check_face_points(swapped, (300, 420))
    assert points == level_face()
    assert notes and "swapped" in notes[0]
    # an upside-down face keeps its own order (its mouth is above its eyes)
    upside = FacePoints((140.0, 200.0), (100.0, 200.0), (120.0, 155.0))
    points, notes = check_face_points(upside, (300, 420))
    assert points == upside and notes == []
    assert FaceAlignment.from_points(points, 64).angle == pytest.approx(180.0)


def test_a_tiny_face_is_warned_about_and_a_face_at_the_edge_is_mirrored_and_masked():
    photo = Photo.from_array(smooth_photo(300, 420))
    tiny = FacePoints((100, 100), (106, 100), (103, 107))
    face, notes = find_face(photo, 256, points=tiny)
    plan = plan_task(photo, "reconstruct", 256, face=face)
    # half side max(2 × 6, 1.8 × 7) = 12.6 px: a 25 px face enlarged 256 / 25.2 = 10.2×
    assert any("The face is small (25 px across)" in n and "10.2×" in n for n in plan.notes)
    # eyes near the left edge: part of the square comes from beyond the photo
    edge = FacePoints((10, 200), (60, 200), (35, 255))
    face, _ = find_face(photo, 64, points=edge)
    plan = plan_task(photo, "colorize", 64, face=face)
    assert any("lies outside the photo" in n for n in plan.notes)
    assert plan.known is not None and 0 < plan.known.mean() < 1
    assert not plan.target[~plan.known].any()  # the mirrored margin is not a target


# --------------------------------------------------------------------------- placing back


def test_composing_changes_only_the_squares_pixels_and_round_trips_the_placement():
    rgb = smooth_photo(300, 420)
    photo = Photo.from_array(rgb)
    face, _ = find_face(photo, 64, points=drawn_face()[1])
    plan = plan_task(photo, "reconstruct", 64, face=face)
    placement = placement_of(plan, photo.size)
    output = np.zeros((64, 64, 3), np.float32)  # a black result shows where it lands
    out = compose_into(photo, placement, output).rgb
    x0, y0, x1, y1 = placement.photo_box()
    outside = np.ones((420, 300), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], rgb[outside])
    changed = np.abs(out - rgb).max(axis=2) > 1e-6
    # the face's middle is the model's, the seam eases into the photo
    cy, cx = int(face.cy), int(face.cx)
    assert np.abs(out[cy, cx]).max() < 1e-6 and changed.sum() < (y1 - y0) * (x1 - x0)
    # saved with a state and read back: the same placement, composing the same pixels
    back = Placement.from_json(json.loads(json.dumps(placement.to_json())), None)
    assert back.face == placement.face and back.difference(placement) is None
    frame = PhotoComposer(photo, back)(output)
    assert np.array_equal(frame, (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))
    assert "aligned face" in back.describe()


def test_inpainting_a_face_fills_only_the_hole_and_saves_the_photos_hole():
    rgb = smooth_photo(300, 420)
    photo = Photo.from_array(rgb)
    hole = np.zeros((420, 300), bool)
    hole[230:260, 130:170] = True  # the mouth
    face, _ = find_face(photo, 64, points=drawn_face()[1])
    plan = plan_task(photo, "inpaint", 64, mask=hole, face=face)
    assert plan.known is not None and not plan.known.all()
    placement = placement_of(plan, photo.size)
    out = compose_into(photo, placement, np.zeros((64, 64, 3), np.float32)).rgb
    f = placement.feather
    assert f == 13  # a 212 px face: 1/16 of it
    far = ~hole
    far[230 - f : 260 + f, 130 - f : 170 + f] = False  # the hole and its seam
    assert np.array_equal(out[far], rgb[far])
    assert np.abs(out[hole]).max() < 1e-6
    bits = placement.hole_bits()
    back = Placement.from_json(json.loads(json.dumps(placement.to_json())), bits)
    assert back.hole is not None and np.array_equal(back.hole, hole)
    with pytest.raises(StateError, match="does not match its view"):
        Placement("reconstruct", (300, 420), plan.view, face=face.with_resolution(128))


def test_a_mask_off_the_face_is_refused():
    photo = Photo.from_array(smooth_photo(300, 420))
    hole = np.zeros((420, 300), bool)
    hole[380:400, 10:30] = True
    face, _ = find_face(photo, 64, points=drawn_face()[1])
    with pytest.raises(InputError, match="The mask lies outside the aligned face"):
        plan_task(photo, "inpaint", 64, mask=hole, face=face)


def test_super_resolving_a_face_makes_the_photo_larger_with_the_face_composed_in():
    """A small photo with a 40 px face, ×4 on a 256 px model: the new picture is the
    photo enlarged 4× (bicubic) with the model's face warped in; outside the enlarged
    square it is the enlarged photo exactly."""
    from dgp_engine.method.region import resize

    rgb = smooth_photo(90, 120)
    photo = Photo.from_array(rgb)
    pts = FacePoints((38.0, 50.0), (52.0, 50.0), (45.0, 66.0))
    face, _ = find_face(photo, 256, points=pts)
    plan = plan_task(photo, "superres", 256, face=face)
    assert plan.factor == 4 and plan.output_size == (360, 480)  # side 57.6 ≤ 64
    placement = placement_of(plan, photo.size)
    assert placement.scale == 4
    out = compose_into(photo, placement, np.zeros((256, 256, 3), np.float32))
    assert out.size == (360, 480)
    big = resize(rgb, 480, 360)
    x0, y0, x1, y1 = face.scaled(4).box((360, 480))
    outside = np.ones((480, 360), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out.rgb[outside], big[outside])
    assert np.abs(out.rgb[int(face.cy * 4), int(face.cx * 4)]).max() < 1e-6
    back = Placement.from_json(json.loads(json.dumps(placement.to_json())), None)
    assert back.scale == 4
    composer = PhotoComposer(photo, back)
    assert composer.size == (360, 480)
    frame = composer(np.zeros((256, 256, 3), np.float32))
    assert np.array_equal(frame, (np.clip(out.rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    # the face too large for the model's low-res grid: what to do
    large = FacePoints((100.0, 150.0), (200.0, 150.0), (150.0, 260.0))
    photo2 = Photo.from_array(smooth_photo(300, 420))
    face2, _ = find_face(photo2, 256, points=large)
    with pytest.raises(InputError, match="super-resolves faces of at most 128 px"):
        plan_task(photo2, "superres", 256, face=face2)
    with pytest.raises(InputError, match="×8 with this 256 px model takes faces of at most 32"):
        plan_task(photo, "superres", 256, face=face, factor=8)


# --------------------------------------------------------------------------- the face prior


def import_face_prior(capsys, tmp_path, name: str = "faces", *extra: str) -> None:
    """``dgp models import NAME --pkl ffhq.pkl``: a copy of the small reference pickle under
    the name NVIDIA gives its FFHQ model."""
    pkl = tmp_path / "ffhq.pkl"
    shutil.copyfile(PKL, pkl)
    code = main(["models", "import", name, "--pkl", str(pkl), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_a_pickle_named_ffhq_is_a_face_prior_unless_told_otherwise(capsys, tmp_path):
    assert alignment_from_name("ffhq.pkl") == "ffhq"
    assert alignment_from_name("metfaces-snapshot.pkl") == "ffhq"
    assert alignment_from_name("afhqcat.pkl") == ""
    out = import_face_prior(capsys, tmp_path)
    assert "face prior (FFHQ-aligned faces)" in out
    assert registry.installed("faces").alignment == "ffhq"
    assert load_prior("faces").alignment == "ffhq"
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "face prior: faces, FFHQ-aligned" in listed
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["faces"]["alignment"] == "ffhq" and rows["bundled"]["alignment"] is None
    assert main(["models", "info", "faces"]) == 0
    assert "alignment:    ffhq" in capsys.readouterr().out
    # the user overrides the guess either way
    import_face_prior(capsys, tmp_path, "plain", "--align", "none")
    assert registry.installed("plain").alignment == "" and load_prior("plain").alignment == ""
    code = main(["models", "import", "mine", "--pkl", str(PKL), "--face"])
    assert code == 0, capsys.readouterr().err
    assert registry.installed("mine").alignment == "ffhq"
    code = main(["models", "import", "snap", "--pkl", str(PKL)])
    assert code == 0 and registry.installed("snap").alignment == ""


def test_an_install_record_from_before_face_priors_still_loads(capsys, tmp_path):
    import_face_prior(capsys, tmp_path)
    record_file = registry.installed("faces").folder / "model.json"
    record = json.loads(record_file.read_text())
    del record["alignment"]
    record_file.write_text(json.dumps(record))
    assert registry.installed("faces").alignment == ""
    assert load_prior("faces").alignment == ""
    record["alignment"] = "celeba-unknown"  # a later kind: read as none, still loads
    record_file.write_text(json.dumps(record))
    assert load_prior("faces").alignment == ""


def portrait(tmp_path) -> tuple:
    rgb, points = drawn_face()
    path = tmp_path / "portrait.png"
    Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).save(path)
    preset = tmp_path / "quick.toml"
    preset.write_text(QUICK)
    return path, points, preset


def test_a_portrait_is_restored_end_to_end_on_its_aligned_face(capsys, tmp_path):
    """``dgp restore --face-points`` with the small reference model as a face prior: the
    300×420 result keeps every pixel outside the warped square."""
    import_face_prior(capsys, tmp_path)
    path, points, preset = portrait(tmp_path)
    out = tmp_path / "out.png"
    argv = ["restore", str(path), "-o", str(out), "--model", "faces", "--preset", str(preset)]
    code = main([*argv, "--face-points", str(points), "-q"])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "(300×420)" in text
    before = np.asarray(Image.open(path).convert("RGB"))
    with Image.open(out) as img:
        assert img.size == (300, 420)
        after = np.asarray(img.convert("RGB"))
    face = FaceAlignment.from_points(points, 64)
    x0, y0, x1, y1 = face.box((300, 420))
    outside = np.ones((420, 300), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(after[outside], before[outside])
    assert (after[y0:y1, x0:x1] != before[y0:y1, x0:x1]).any()


def test_the_command_line_super_resolves_a_small_face(capsys, tmp_path):
    import_face_prior(capsys, tmp_path)
    path = tmp_path / "small.png"
    Image.fromarray((smooth_photo(60, 80) * 255).astype(np.uint8)).save(path)
    preset = tmp_path / "quick.toml"
    preset.write_text(QUICK)
    out = tmp_path / "big.png"
    argv = ["superres", str(path), "-o", str(out), "--model", "faces", "--preset", str(preset)]
    # eyes 6 px apart: a 25 px face, ×2 on the 64 px model
    code = main([*argv, "--face-points", "27,35 33,35 30,42", "-q"])
    assert code == 0, capsys.readouterr().err
    with Image.open(out) as img:
        assert img.size == (120, 160)


def test_a_face_prior_without_a_face_says_what_to_do_and_writes_nothing(
    capsys, tmp_path, monkeypatch
):
    import_face_prior(capsys, tmp_path)
    path, _, preset = portrait(tmp_path)
    out = tmp_path / "out.png"
    argv = ["restore", str(path), "-o", str(out), "--model", "faces", "--preset", str(preset)]
    # no detector installed
    monkeypatch.setattr(face_detect, "_cv2", lambda: None)
    assert main([*argv, "-q"]) != 0
    err = capsys.readouterr().err
    assert "face prior and no face detector is installed" in err
    assert '--face-points "x,y x,y x,y"' in err and "three-point tool" in err
    assert not out.exists()
    # a square region is no aligned face either
    assert main([*argv, "--region", "0,0,300", "-q"]) != 0
    assert "needs the face aligned the FFHQ way" in capsys.readouterr().err
    # points that are no face: one sentence
    assert main([*argv, "--face-points", "100,100 140,100 180,101", "-q"]) != 0
    assert "lies on the line through the eyes" in capsys.readouterr().err
    assert not out.exists()
    # an already aligned crop is restored as it is
    assert main([*argv, "--aligned", "-q"]) == 0, capsys.readouterr().err


def test_the_detector_finds_a_real_face_and_nothing_in_a_faceless_photo():
    """OpenCV's cascades (the ``face`` extra) on scikit-image's astronaut portrait: the
    eyes within a few pixels of where they are (measured by eye on the picture)."""
    from skimage import data

    assert face_detect.detector_name() is not None
    found = face_detect.detect_face_points(data.astronaut())
    assert found is not None
    assert found.left_eye == pytest.approx((201, 101), abs=4)
    assert found.right_eye == pytest.approx((248, 104), abs=4)
    assert found.mouth == pytest.approx((224, 147), abs=8)
    blank = np.full((300, 300, 3), 0.5, np.float32)
    assert face_detect.detect_face_points(blank) is None
    with pytest.raises(FaceNotFoundError, match="found no face with two eyes"):
        find_face(Photo.from_array(blank), 64, face_prior=True)


def test_restore_image_finds_the_face_of_a_face_prior_by_itself(capsys, tmp_path):
    from skimage import data

    import_face_prior(capsys, tmp_path)
    prior = load_prior("faces")
    photo = data.astronaut().astype(np.float32) / 255.0
    preset = tmp_path / "quick.toml"
    preset.write_text(QUICK)
    job = restore_image(prior, photo, "colorize", preset=str(preset))
    assert job.plan.face is not None and job.notes[0].startswith("Found a face with OpenCV")
    result = job.run_to_end()
    assert result.photo.size == (512, 512)
    assert result.state.placement is not None and result.state.placement.face is not None


@pytest.mark.timeout(240)
def test_a_batch_on_a_face_prior_restores_the_faces_it_finds_and_says_why_not_elsewhere(
    capsys, tmp_path
):
    """``dgp batch restore`` with a face prior: the portrait's face is found and restored
    in place (same size, outside the square untouched); a picture without a face fails
    with the sentence saying what to do, and the rest of the batch goes on."""
    import sqlite3

    from skimage import data

    import_face_prior(capsys, tmp_path)
    album = tmp_path / "album"
    album.mkdir()
    Image.fromarray(data.astronaut()).save(album / "astronaut.png")
    Image.new("RGB", (120, 90), (128, 128, 128)).save(album / "wall.png")
    preset = tmp_path / "quick.toml"
    preset.write_text(QUICK)
    out = tmp_path / "out"
    argv = ["batch", "restore", str(album), "-o", str(out), "--model", "faces"]
    code = main([*argv, "--preset", str(preset), "-q", "--threads", "1", "--workers", "1"])
    capsys.readouterr()
    assert code == 1  # one picture failed
    db = sqlite3.connect(out / ".dgp-batch" / "journal.sqlite")
    rows = dict(db.execute("SELECT rel, status FROM items").fetchall())
    reason = db.execute("SELECT reason FROM items WHERE rel = 'wall.png'").fetchone()[0]
    db.close()
    assert rows == {"astronaut.png": "done", "wall.png": "failed"}
    assert "face prior" in reason and "--face-points" in reason
    before = data.astronaut()
    after = np.asarray(Image.open(out / "astronaut.png").convert("RGB"))
    assert after.shape == before.shape
    found = face_detect.detect_face_points(before)
    x0, y0, x1, y1 = FaceAlignment.from_points(found, 64).box((512, 512))
    outside = np.ones((512, 512), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(after[outside], before[outside])
    assert (after[y0:y1, x0:x1] != before[y0:y1, x0:x1]).any()
