"""One RestoreRequest for every front end (dgp_engine.tasks.request): the CLI's arguments
and a batch's settings make the same request, it is resolved once (device, threads,
precision, prior, class, preset), and nothing below the front end looks the task up by
its name again."""

from __future__ import annotations

from collections import UserDict

import numpy as np
import pytest
import torch
from PIL import Image

from dgp_engine import DeviceError, Grayscale, InputError, Preset, ReconstructionRun
from dgp_engine.batch import BatchSettings
from dgp_engine.batch.runner import restore_request as batch_request
from dgp_engine.batch.runner import worker_config
from dgp_engine.cli import build_parser, main
from dgp_engine.cli.tasks import restore_request as cli_request
from dgp_engine.files.photos import Photo
from dgp_engine.method import taskspec
from dgp_engine.method.degradations import make_degradation
from dgp_engine.method.taskspec import TASK_SPECS, task_spec
from dgp_engine.tasks.request import RestoreRequest, resolve_request
from dgp_engine.tasks.restore import plan_task

from .helpers import smooth_target, tiny_prior
from .task_helpers import photo_array, tiny_model_folder, tiny_preset_file


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("request")
    return tiny_model_folder(root / "tiny"), tiny_preset_file(root / "tiny.toml")


class CountingIndex(UserDict):
    """The task table's name index, counting the lookups by name."""

    def __init__(self, data):
        super().__init__(data)
        self.lookups: list[str] = []

    def get(self, key, default=None):
        self.lookups.append(key)
        return self.data.get(key, default)


@pytest.fixture
def lookups(monkeypatch) -> list[str]:
    index = CountingIndex(taskspec._BY_NAME)
    monkeypatch.setattr(taskspec, "_BY_NAME", index)
    return index.lookups


def test_a_request_holds_the_task_looked_up_once_and_checks_its_values(lookups):
    request = RestoreRequest("Inpainting", precision=" BF16 ")
    assert request.task is task_spec("inpaint") and request.task_name == "inpaint"
    assert request.precision == "bf16"
    assert lookups == ["inpainting", "inpaint"]  # the request's, then this test's own
    again = request.for_picture(mask=np.ones((4, 4), bool), region=(0, 0, 4))
    assert again.task is request.task and len(lookups) == 2  # no lookup for a copy
    with pytest.raises(InputError, match="Unknown precision 'fp16'"):
        RestoreRequest(task_spec("colorize"), precision="fp16")
    with pytest.raises(InputError, match="float32 only"):
        RestoreRequest(task_spec("colorize"), precision="bf16", exact=True)
    with pytest.raises(InputError, match="threads must be a whole number of at least 1"):
        RestoreRequest(task_spec("colorize"), threads=0)
    with pytest.raises(InputError, match="Unknown task 'sharpen'"):
        RestoreRequest("sharpen")
    for feather in (-5, 2.5, True):  # --feather -5 was taken as 0
        with pytest.raises(InputError, match="seam width .* 0 or more"):
            RestoreRequest(task_spec("inpaint"), feather=feather)
    assert RestoreRequest(task_spec("inpaint"), feather=0).feather == 0


def test_a_negative_feather_on_the_command_line_is_one_sentence(tmp_path, model, capsys):
    folder, _ = model
    photo = tmp_path / "p.png"
    Image.fromarray(photo_array(24, 24)).save(photo)
    rc = main(
        ["colorize", str(photo), "-o", str(tmp_path / "o.png"), "--model", str(folder)]
        + ["--feather", "-5"]
    )
    assert rc != 0 and not (tmp_path / "o.png").exists()
    err = capsys.readouterr().err
    assert "seam width" in err and "Traceback" not in err


def test_the_cli_and_a_batch_make_the_same_request(tmp_path, model):
    folder, preset = model
    args = build_parser().parse_args(
        [
            "inpaint",
            "in.png",
            "-o",
            "out.png",
            "--model",
            str(folder),
            "--preset",
            str(preset),
            "--class",
            "goldfish",
            "--seed",
            "3",
            "--precision",
            "bf16",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--feather",
            "4",
        ]
    )
    settings = BatchSettings(
        "inpainting",
        tmp_path,
        tmp_path / "out",
        model=str(folder),
        preset=str(preset),
        class_spec="goldfish",
        seed=3,
        precision="bf16",
        feather=4,
    )
    from_cli = cli_request(args)
    from_batch = batch_request(worker_config(settings, device="cpu", threads=1))
    assert from_cli == from_batch
    assert from_cli.task is args.spec  # the sub-command's TaskSpec: no lookup at all


def test_resolution_decides_device_threads_precision_prior_class_and_preset(model):
    folder, preset = model
    request = RestoreRequest(
        task_spec("inpaint"),
        model=str(folder),
        preset=str(preset),
        iterations_scale=2.0,
        class_spec="goldfish",
        device="cpu",
        precision="bf16",
        threads=1,
    )
    ready = resolve_request(request)
    assert ready.device == torch.device("cpu") and ready.threads == 1
    assert torch.get_num_threads() == 1
    assert ready.precision == "bf16" and ready.compute_precision == "bf16"
    assert ready.prior.resolution == 32 and ready.class_id == 1
    assert ready.preset.name == "tiny" and ready.preset.iterations == (4, 4)
    assert ready.notices == ()
    # the task's default preset for the model, as the CLI and the app choose it
    default = resolve_request(
        RestoreRequest(task_spec("colorize"), model=str(folder), device="cpu", threads=1)
    )
    assert default.preset.name == "colorization" and default.class_id is None


def test_a_precision_the_device_lacks_is_refused_before_loading_or_falls_back(model):
    folder, _ = model

    def no_load(name, device):
        raise AssertionError("the model was loaded")

    request = RestoreRequest(
        task_spec("colorize"), model=str(folder), device="cpu", precision="tf32", threads=1
    )
    with pytest.raises(DeviceError, match="TF32 needs an NVIDIA GPU"):
        resolve_request(request, load=no_load)
    ready = resolve_request(request, fall_back=True)  # the app's choice
    assert ready.precision == "auto" and ready.compute_precision == "fp32"
    assert len(ready.notices) == 1 and "Running with 'auto' instead." in ready.notices[0]


def test_a_missing_gpu_is_refused_or_replaced_by_the_cpu(model):
    folder, _ = model
    request = RestoreRequest(task_spec("colorize"), model=str(folder), device="cuda", threads=1)
    with pytest.raises(DeviceError):
        resolve_request(request)
    ready = resolve_request(request, fall_back=True)
    assert ready.device == torch.device("cpu")
    assert ready.notices and ready.notices[0].endswith("Running on the CPU instead.")


def test_one_resolution_restores_many_pictures(model):
    folder, preset = model
    loads = []

    def load(name, device):
        loads.append(name)
        return tiny_prior()

    ready = resolve_request(
        RestoreRequest(
            task_spec("inpaint"),
            model=str(folder),
            preset=str(preset),
            class_spec=1,
            device="cpu",
            threads=1,
        ),
        load=load,
    )
    for seed in (0, 1):
        hole = np.zeros((24, 24), bool)
        hole[8:16, 8 + seed : 16 + seed] = True
        job = ready.for_picture(mask=hole).start(Photo.from_array(photo_array(24, 24, seed)))
        result = job.run_to_end()
        assert result.state.class_id == 1 and result.photo.size == (24, 24)
        assert result.plan.hole is not None and result.plan.hole[8, 8 + seed]
    assert loads == [str(folder)]


def test_a_cli_run_never_looks_its_task_up_by_name(tmp_path, model, lookups):
    """The issue counted five lookups of the task's name between the CLI's arguments and
    the loop; the request carries the sub-command's TaskSpec all the way down."""
    folder, preset = model
    Image.fromarray(photo_array(40, 56)).save(tmp_path / "in.png")
    mask = np.zeros((40, 56), np.uint8)
    mask[15:25, 20:30] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert (
        main(
            [
                "inpaint",
                str(tmp_path / "in.png"),
                "-o",
                str(tmp_path / "out.png"),
                "--mask",
                str(tmp_path / "mask.png"),
                "--model",
                str(folder),
                "--threads",
                "1",
                "--iterations-scale",
                "0.002",
                "-q",
            ]
        )
        == 0
    )
    assert lookups == []


def test_the_run_takes_a_degradation_and_the_task_maps_to_it_once():
    prior = tiny_prior()
    preset = Preset.from_dict({"iterations": [1], "select_num": 1})
    with pytest.raises(InputError, match="phi must be a dgp_engine.Degradation"):
        ReconstructionRun(
            prior,
            smooth_target(32),
            "colorize",
            class_id=0,
            preset=preset,
            z_init=None,
            exact=False,
            seed=0,
            cancel=None,
            select_batch=None,
        )
    run = ReconstructionRun(
        prior,
        smooth_target(32),
        Grayscale(),
        class_id=0,
        preset=preset,
        z_init=None,
        exact=False,
        seed=0,
        cancel=None,
        select_batch=None,
    )
    assert run.run_to_end().task == {"name": "gray"}
    # a photo's plan uses the task's own φ (make_degradation), plus what the photo
    # leaves unknown (the hole, a fitted photo's margin): one mapping from tasks to φ
    for spec in TASK_SPECS:
        side = 8 if spec.new_picture else 30  # super-resolution takes a small input
        mask = None
        if spec.uses_mask:
            mask = np.zeros((side, side), bool)
            mask[2:5, 2:5] = True
        plan = plan_task(Photo.from_array(photo_array(side, side)), spec, 32, mask=mask)
        expected = make_degradation(
            spec,
            factor=plan.factor,
            mask=None
            if plan.known is None or plan.known.all()
            else torch.from_numpy(plan.known.astype(np.float32)),
        )
        assert plan.degradation.describe() == expected.describe(), spec.name
