"""`epic-ar train` mistakes (bad numbers, hostile or truncated resume files, a corrupt gulp meta):
one `epic-ar train: error: ...` line and no run folder left behind; checkpoints of a run that
failed later are kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from epic_ar.errors import EpicArError
from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.synthetic.dataset import SyntheticConfig
from epic_ar.training.run_config import parse_run_config
from epic_ar.training.train import remove_log_dir_without_checkpoints
from helpers.bad_input import OPEN, one_error_line
from helpers.gulp_data import make_synthetic_data
from helpers.results_files import CreatesFile

# --- 1 and 2. train: one line, no run folder ---


@pytest.fixture(scope="module")
def gulp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/rgb_{train,validation} of a tiny synthetic dataset, and ROOT_BAD: the same with a
    train meta file of the wrong shape."""
    config = SyntheticConfig(
        participants=2, videos_per_participant=1, segments_per_video=6, frame_width=48,
        frame_height=32, min_frames=4, max_frames=6, layouts=("tar",), seed=5,
    )  # fmt: skip
    data = make_synthetic_data(tmp_path_factory.mktemp("train_data"), config)
    root = data.root / "gulp"
    for split in ("train", "validation"):
        run_gulp(
            GulpJob(
                data.frames("tar", "rgb"), root / f"rgb_{split}", data.labels("rgb", split), "rgb"
            )
        )
    return root


TRAIN_DRIVER = """
import contextlib, io, json, os, sys
from epic_ar.cli.main import main
cases = json.loads(sys.argv[1])
for case in cases:
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        try:
            status = main(["train", *case["args"]])
        except SystemExit as exc:
            status = exc.code
        except BaseException as exc:
            status = type(exc).__name__
    print(json.dumps({"status": status, "stderr": buffer.getvalue(),
                      "left": os.path.exists(case["run_dir"])}))
"""


@pytest.mark.slow
def test_train_mistakes_are_one_line_and_leave_no_run_folder(
    gulp_root: Path, tmp_path: Path
) -> None:
    bad_root = tmp_path / "bad_gulp"
    for split in ("train", "validation"):
        (bad_root / f"rgb_{split}").mkdir(parents=True)
        for file in (gulp_root / f"rgb_{split}").iterdir():
            (bad_root / f"rgb_{split}" / file.name).write_bytes(file.read_bytes())
    (bad_root / "rgb_train" / "meta_0.gmeta").write_text(json.dumps({"x": 1}))
    hostile = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {}, "payload": CreatesFile(tmp_path / "pwned")}, hostile)
    truncated = tmp_path / "truncated.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(100)}, "optimizer_states": []}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    cases = {
        "learning.lr=abc": "learning.lr: 'abc' is not a number",
        "trainer.max_epochs=abc": "trainer.max_epochs: 'abc' is not an integer or null",
        f"resume={hostile}": f"resume: {hostile}: refused to load '{OPEN}'",
        f"resume={truncated}": f"resume: {truncated}: not a readable checkpoint",
        f"resume={tmp_path}": f"resume: {tmp_path} is a folder",
        f"data._root_gulp_dir={bad_root}": f"{bad_root / 'rgb_train' / 'meta_0.gmeta'}:",
    }
    tiny = [
        "--config-name", "tsn_rgb", f"data._root_gulp_dir={gulp_root}", "model.backbone=resnet18",
        "model.pretrained=null", "data.preprocessing.input_size=32",
        "data.test_augmentation.rescale_size=32", "data.frame_count=2", "data.worker_count=0",
        "learning.batch_size=4", "trainer.max_epochs=1", "trainer.accelerator=cpu",
        "+trainer.enable_progress_bar=false",
    ]  # fmt: skip
    runs = [
        {"args": [*tiny, f"hydra.run.dir={tmp_path / f'run{i}'}", override],
         "run_dir": str(tmp_path / f"run{i}")}
        for i, override in enumerate(cases)
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_DRIVER, json.dumps(runs)],
        capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == len(cases)
    for (override, fragment), report in zip(cases.items(), reports, strict=True):
        assert report["status"] == 1, (override, report)
        line = one_error_line(report["stderr"], "train")
        assert fragment in line, override
        assert "trust" not in line, override  # resuming never loads a file it must trust
        assert not report["left"], override
    assert not (tmp_path / "pwned").exists()


def test_config_numbers_are_checked_before_any_work() -> None:
    base: dict[str, Any] = {"modality": "RGB", "model": {"type": "TSN"}, "trainer": {}}
    with pytest.raises(EpicArError, match=r"^learning.optimizer.momentum: 'x' is not a number$"):
        parse_run_config({**base, "learning": {"batch_size": 2, "optimizer": {"momentum": "x"}}})
    with pytest.raises(EpicArError, match=r"^learning.lr: -0.1 is not a finite number >= 0$"):
        parse_run_config({**base, "learning": {"batch_size": 2, "lr": -0.1}})
    bad_trainer = {**base, "learning": {"batch_size": 2}, "trainer": {"precision": "bf17"}}
    with pytest.raises(EpicArError, match=r"^trainer.precision: 'bf17' is not one of 64, 32, 16"):
        parse_run_config(bad_trainer)
    accepted = {"precision": "bf16-mixed", "devices": [0, 1], "limit_val_batches": 0}
    run = parse_run_config({**base, "learning": {"batch_size": 2}, "trainer": accepted})
    assert run.trainer == accepted


def test_failed_run_keeps_its_checkpoints_and_drops_an_empty_version(tmp_path: Path) -> None:
    logs = tmp_path / "run" / "lightning_logs"
    kept, dropped = logs / "version_0", logs / "version_1"
    (kept / "checkpoints").mkdir(parents=True)
    (kept / "checkpoints" / "epoch=0.ckpt").write_bytes(b"checkpoint")
    (kept / "metrics.csv").write_text("epoch\n0\n")
    (dropped / "checkpoints").mkdir(parents=True)
    (dropped / "metrics.csv").write_text("epoch\n")
    remove_log_dir_without_checkpoints(dropped)
    remove_log_dir_without_checkpoints(kept)
    assert sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*")) == [
        "version_0", "version_0/checkpoints", "version_0/checkpoints/epoch=0.ckpt",
        "version_0/metrics.csv",
    ]  # fmt: skip
    remove_log_dir_without_checkpoints(tmp_path / "other" / "lightning_logs" / "version_0")
    lone = tmp_path / "lone" / "lightning_logs" / "version_0"
    lone.mkdir(parents=True)
    remove_log_dir_without_checkpoints(lone)
    assert list((tmp_path / "lone").iterdir()) == []  # the emptied lightning_logs goes too
