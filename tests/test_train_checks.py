"""`epic-ar train` and `epic-ar test` mistakes a new user makes, each answered by a line that
names the fix: a missing or misspelt --config-name, gulp directories set alone, gulp
directories and frame archives together, a test split a frames-trained checkpoint has no
labels for. And the pieces of a run's housekeeping: the logging interval of short epochs,
the summary's wording, which version folder a resumed run continues, Ctrl-C."""

from __future__ import annotations

import csv
import logging
import math
import signal
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_module

from epic_ar.cli.main import command_flags, error_message
from epic_ar.configs.names import RUN_CONFIGS
from epic_ar.data.config import DataConfig
from epic_ar.errors import EpicArError
from epic_ar.training.interrupts import lightning_interrupts, stopped_by_interrupt
from epic_ar.training.logging_setup import quiet_lightning
from epic_ar.training.run_config import check_sources, parse_run_config, plain_run_config
from epic_ar.training.run_logs import (
    ResumePoint,
    continued_version,
    finished_by,
    keep_rows_before,
    resume_point,
)
from epic_ar.training.scoring import ScoringOptions, with_frame_source
from epic_ar.training.train import TrainingOutcome, logging_interval, summary_lines
from helpers.bad_input import run

CHOICES = "tsn_rgb, tsn_flow, trn_rgb, trn_flow, tsm_rgb, tsm_flow"


def composed(name: str, *overrides: str) -> dict[str, Any]:
    with initialize_config_module("epic_ar.configs", version_base="1.3"):
        return plain_run_config(compose(name, list(overrides)))


# --- --config-name ---


def test_overrides_without_a_config_name_ask_for_one(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "train", "data._root_gulp_dir=gulp")
    assert (status, out) == (1, "")
    assert (
        err == f"epic-ar train: error: no run config: choose one with --config-name ({CHOICES})\n"
    )


def test_a_misspelt_config_name_lists_the_names(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "train", "--config-name", "tsn_rbg", "data._root_gulp_dir=g")
    assert status == 1
    assert err == (
        "epic-ar train: error: --config-name tsn_rbg: not a packaged config (did you mean "
        f"tsn_rgb?); choose one of {CHOICES}\n"
    )
    status, _, err = run(capsys, "train", "--config-name=resnet")
    assert status == 1
    assert err == (
        f"epic-ar train: error: --config-name resnet: not a packaged config; choose one of "
        f"{CHOICES}\n"
    )


def test_the_config_names_are_the_packaged_files() -> None:
    folder = Path(__file__).resolve().parents[1] / "src" / "epic_ar" / "configs"
    files = {path.stem for path in folder.glob("*.yaml")} - {"train"}  # train: help only
    assert set(RUN_CONFIGS) == files and len(RUN_CONFIGS) == 6


# --- gulp directories set alone; one source of frames ---


def test_gulp_directories_set_alone_need_no_root() -> None:
    plain = composed("tsn_flow", "data.train_gulp_dir=/g/t", "data.val_gulp_dir=/g/v")
    data = plain["data"]
    assert (data["train_gulp_dir"], data["val_gulp_dir"]) == ("/g/t", "/g/v")
    assert data["_root_gulp_dir"] is None and data["test_gulp_dir"] is None  # not "None/..."
    assert parse_run_config(plain).data.test_gulp_dir is None
    # a root still fills the directories not set alone
    data = composed("tsn_rgb", "data._root_gulp_dir=/r", "data.val_gulp_dir=/v")["data"]
    assert (data["train_gulp_dir"], data["val_gulp_dir"]) == ("/r/rgb_train", "/v")


def test_a_needed_gulp_directory_left_unset_names_both_ways_to_set_it() -> None:
    plain = composed("tsn_rgb", "data.val_gulp_dir=/g/v")
    with pytest.raises(EpicArError) as refused:
        check_sources(parse_run_config(plain).data, need_val=True)
    assert str(refused.value) == (
        "data.train_gulp_dir is not set: add data.train_gulp_dir=... or "
        "data._root_gulp_dir=... (the folder holding the gulp directories)"
    )
    with pytest.raises(EpicArError, match=r"^data._root_gulp_dir is not set: add data"):
        composed("tsm_rgb")  # nothing names the frames


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data._root_gulp_dir=/g", "data.frames_dir=/f"],
            "data._root_gulp_dir and data.frames_dir are both set: set one (gulp directories, "
            "or frame archives with labels files)",
        ),
        (
            ["data.train_gulp_dir=/t", "data.frames_dir=/f"],
            "data.train_gulp_dir and data.frames_dir are both set: set one (gulp directories, "
            "or frame archives with labels files)",
        ),
        (
            ["data._root_gulp_dir=/g", "data.videos_dir=/v"],
            "data._root_gulp_dir and data.videos_dir are both set: set one (gulp directories, "
            "or videos with labels files)",
        ),
    ],
)
def test_gulp_directories_and_archives_together_are_refused(
    overrides: list[str], message: str
) -> None:
    labels = ["data.train_labels=/t.csv", "data.val_labels=/v.csv"]
    with pytest.raises(EpicArError) as refused:
        parse_run_config(composed("tsn_rgb", *overrides, *labels))
    assert str(refused.value) == message


def test_archives_with_a_null_gulp_root_are_one_source() -> None:
    labels = ["data.train_labels=/t.csv", "data.val_labels=/v.csv"]
    run = parse_run_config(
        composed("tsn_rgb", "data._root_gulp_dir=null", "data.frames_dir=/f", *labels)
    )
    assert run.data.frames_dir == "/f" and run.data.train_gulp_dir is None


# --- epic-ar test on a checkpoint trained from archives ---


@pytest.mark.parametrize(
    ("key", "flag"), [("frames_dir", "--frames-dir"), ("videos_dir", "--videos-dir")]
)
def test_a_split_without_stored_labels_names_the_test_flags(key: str, flag: str) -> None:
    source: dict[str, Any] = {key: "/frames"}
    data = DataConfig(**source, train_labels="/t.csv", val_labels="/v.csv")
    assert with_frame_source(data, "rgb", ScoringOptions(split="val")) == data
    with pytest.raises(EpicArError) as refused:
        with_frame_source(data, "rgb", ScoringOptions(split="test"))
    flags = command_flags("test")
    assert {flags["labels"], flags["data_dir"], flags[key]} == {"--labels", "--datadir", flag}
    assert error_message(refused.value, flags) == (
        f"the checkpoint was trained from data.{key} and stores no data.test_labels; give the "
        f"split's frames and labels with {flag} DIR --labels FILE, or its gulp directory with "
        "--datadir DIR"
    )


# --- the logging interval, the summary ---


def test_short_epochs_log_each_epoch_and_long_ones_as_configured() -> None:
    assert logging_interval(5, 2, 1) == 2  # an epoch of 2 steps logs at its second
    assert logging_interval(5, 7, 4) == 1  # 7 batches, 4 a step: one step an epoch
    assert logging_interval(5, 3000, 1) == 5  # the published configs' runs: unchanged
    assert logging_interval(0, 2, 1) == 0  # logging switched off stays off
    assert logging_interval(5, math.inf, 1) == 5  # an epoch of unknown length


def outcome_with(tmp_path: Path, **fields: Any) -> TrainingOutcome:
    log_dir = tmp_path / "lightning_logs" / "version_0"
    values: dict[str, Any] = {
        "run_dir": tmp_path, "log_dir": log_dir, "checkpoints": [], "last_checkpoint": None,
        "metrics": {}, "writer": True,
    }  # fmt: skip
    return TrainingOutcome(**{**values, **fields})


def test_summary_counts_epochs_in_words_and_names_the_version_folder(tmp_path: Path) -> None:
    folder = tmp_path / "lightning_logs" / "version_1" / "checkpoints"
    folder.mkdir(parents=True)
    (tmp_path / "lightning_logs" / "version_0").mkdir()
    one = outcome_with(
        tmp_path, log_dir=folder.parent, checkpoints=[folder / "epoch=0.ckpt"],
        last_checkpoint=folder / "last.ckpt",
    )  # fmt: skip
    lines = summary_lines(one)
    assert lines[0] == (
        f"run directory: {tmp_path} (this run: lightning_logs/version_1; 1 earlier run beside it)"
    )
    assert lines[1] == f"checkpoints:   {folder} (1 epoch + last.ckpt)"
    two = outcome_with(
        tmp_path, log_dir=folder.parent, checkpoints=[folder / "epoch=0.ckpt"] * 2,
        last_checkpoint=folder / "last.ckpt", resumed_from=folder / "epoch=0.ckpt",
        continued=True,
    )  # fmt: skip
    assert summary_lines(two)[:2] == [
        f"run directory: {tmp_path} (continued lightning_logs/version_1 from epoch=0.ckpt)",
        f"checkpoints:   {folder} (2 epochs + last.ckpt)",
    ]
    done = outcome_with(tmp_path, last_checkpoint=folder / "last.ckpt",
                        already_complete="trainer.max_epochs=3")  # fmt: skip
    assert summary_lines(done) == [
        f"the run is already complete (trainer.max_epochs=3 reached): its last checkpoint is "
        f"{folder / 'last.ckpt'}; nothing was trained or written (raise trainer.max_epochs "
        "to train on)"
    ]


# --- resuming: how far a checkpoint got, which folder continues, the logs kept ---


def point(path: Path, epoch: int, *, done: int | None = None, step: int = 10) -> ResumePoint:
    return ResumePoint(path, epoch, epoch + 1 if done is None else done, step, step)


def test_the_progress_read_from_a_checkpoint(tmp_path: Path) -> None:
    loops = {"fit_loop": {"epoch_progress": {"current": {"processed": 3}},
                          "epoch_loop.state_dict": {"_batches_that_stepped": 12}}}  # fmt: skip
    read = resume_point(tmp_path, {"epoch": 2, "global_step": 24, "loops": loops})
    assert read == ResumePoint(tmp_path, epoch=2, epochs_done=3, global_step=24, logged_step=12)
    # without Lightning's loop state: the epoch it was saved in is taken as done
    assert resume_point(tmp_path, {"epoch": 4}) == ResumePoint(tmp_path, 4, 5, 0, 0)


def test_a_run_is_finished_as_lightning_decides(tmp_path: Path) -> None:
    saved = point(tmp_path, epoch=2, step=30)  # 3 epochs done
    assert finished_by(saved, {"max_epochs": 3}) == "trainer.max_epochs=3"
    assert finished_by(saved, {"max_epochs": 4}) is None
    assert finished_by(saved, {"max_epochs": -1}) is None  # no limit
    assert finished_by(saved, {"max_epochs": 9, "max_steps": 30}) == "trainer.max_steps=30"
    assert finished_by(point(tmp_path, 999), {"max_epochs": None}) == "trainer.max_epochs=1000"
    assert finished_by(point(tmp_path, 999), {"max_epochs": None, "max_steps": 10**6}) is None


def test_a_resumed_run_continues_its_own_newest_checkpoints_folder(tmp_path: Path) -> None:
    logs = tmp_path / "run" / "lightning_logs"
    folder = logs / "version_3" / "checkpoints"
    folder.mkdir(parents=True)
    for epoch in (0, 1):
        torch.save({"epoch": epoch}, folder / f"epoch={epoch}.ckpt")
    (folder / "epoch=2.ckpt").write_bytes(b"PK")  # killed while writing: not complete
    assert continued_version(point(folder / "epoch=1.ckpt", 1), logs) == 3
    assert continued_version(point(folder / "last.ckpt", 1), logs) == 3
    # an earlier epoch of a run that went further starts a new folder: nothing is replaced
    assert continued_version(point(folder / "epoch=0.ckpt", 0), logs) is None
    # a checkpoint of another run directory, or outside Lightning's layout
    assert continued_version(point(folder / "epoch=1.ckpt", 1), tmp_path / "lightning_logs") is None
    assert continued_version(point(tmp_path / "a.ckpt", 1), logs) is None


def test_the_metrics_logged_after_the_checkpoint_are_dropped(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.csv"
    rows = [
        {"epoch": "", "lr": "0.1", "step": "0"},
        {"epoch": "0", "lr": "", "step": "1"},
        {"epoch": "", "lr": "0.01", "step": "2"},  # the epoch after the checkpoint
        {"epoch": "1", "lr": "", "step": "3"},
    ]
    with metrics.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["epoch", "lr", "step"])
        writer.writeheader()
        writer.writerows(rows)
    assert keep_rows_before(metrics, 2) == ["epoch", "lr", "step"]
    with metrics.open(newline="") as file:
        assert list(csv.DictReader(file)) == rows[:2]
    assert keep_rows_before(tmp_path / "none.csv", 2) == []


# --- Ctrl-C ---


def test_lightnings_exit_after_ctrl_c_is_a_keyboard_interrupt_again() -> None:
    def lightning_like_fit() -> None:  # as lightning.pytorch.trainer.call handles Ctrl-C
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise SystemExit(1) from None

    def own_handler(number: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, own_handler)
    try:
        with pytest.raises(KeyboardInterrupt), lightning_interrupts():
            lightning_like_fit()
        assert signal.getsignal(signal.SIGINT) is own_handler  # put back
        with pytest.raises(SystemExit), lightning_interrupts():
            raise SystemExit(3)  # any other exit passes
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not stopped_by_interrupt(SystemExit(1))


def test_lightnings_ctrl_c_note_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    quiet_lightning()
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO):
        logger.info("\nDetected KeyboardInterrupt, attempting graceful shutdown ...")
        logger.info("`Trainer.fit` stopped")
    assert [record.getMessage() for record in caplog.records] == ["`Trainer.fit` stopped"]


def test_a_failed_start_keeps_folders_that_were_there_before(tmp_path: Path) -> None:
    from epic_ar.cli.train import _existing_run_folders
    from epic_ar.training.train import remove_unused_run_dir

    mine = tmp_path / "keepme" / "sub"
    mine.mkdir(parents=True)
    run_dir = mine / "r1"
    arguments = ["--config-name", "tsn_rgb", f"hydra.run.dir={run_dir}"]
    existed = _existing_run_folders(arguments)
    assert existed == [mine]  # r1 does not exist yet
    (run_dir / ".hydra").mkdir(parents=True)  # what Hydra writes before the run fails
    (run_dir / "train.log").write_text("")
    remove_unused_run_dir(run_dir, existed)
    assert not run_dir.exists() and mine.is_dir()
    # a folder the user made beforehand, given as the run folder itself, stays too
    existed = _existing_run_folders([f"hydra.run.dir={mine}"])
    assert existed == [mine, mine.parent]
    (mine / ".hydra").mkdir()
    (mine / "train.log").write_text("an earlier run's log")
    remove_unused_run_dir(mine, existed)
    assert sorted(p.name for p in mine.iterdir()) == [".hydra", "train.log"]
    # Hydra's own dated folders go, with their parent (outputs/DATE/TIME)
    dated = tmp_path / "outputs" / "2026-11-30" / "21-00-00"
    (dated / ".hydra").mkdir(parents=True)
    remove_unused_run_dir(dated, _existing_run_folders([]))
    assert not dated.parent.exists() and (tmp_path / "outputs").is_dir()


def test_a_newer_last_checkpoint_of_a_later_epoch_keeps_the_folder(tmp_path: Path) -> None:
    import os

    from epic_ar.training.run_logs import remove_incomplete_checkpoints

    logs = tmp_path / "run" / "lightning_logs"
    folder = logs / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save({"epoch": 1}, folder / "epoch=1.ckpt")  # the later epoch files were pruned
    torch.save({"epoch": 5}, folder / "last.ckpt")
    os.utime(folder / "epoch=1.ckpt", ns=(1_000_000_000, 1_000_000_000))
    assert continued_version(point(folder / "epoch=1.ckpt", 1), logs) is None
    torch.save({"epoch": 1}, folder / "last.ckpt")  # saved with epoch 1: the same point
    assert continued_version(point(folder / "epoch=1.ckpt", 1), logs) == 0
    (folder / "epoch=2.ckpt").write_bytes(b"PK")  # killed while writing
    assert remove_incomplete_checkpoints(folder) == [folder / "epoch=2.ckpt"]
    assert sorted(p.name for p in folder.iterdir()) == ["epoch=1.ckpt", "last.ckpt"]


def test_a_config_folder_on_hydras_search_path_is_not_checked() -> None:
    from epic_ar.cli.train import _chosen_config

    assert _chosen_config(["--config-name", "mine"]) == ("mine", False)
    assert _chosen_config(["--config-name", "mine", "hydra.searchpath=[file:///x]"]) == (
        "mine",
        True,
    )
    assert _chosen_config(["--config-dir", "/x", "--config-name", "mine"]) == ("mine", True)


def test_ctrl_c_while_the_first_checkpoint_is_written_says_the_folder_stays(
    tmp_path: Path,
) -> None:
    from epic_ar.training.train import TrainingInterrupted, interruption_message

    folder = tmp_path / "run" / "lightning_logs" / "version_0"
    kept = TrainingInterrupted(None, folder=folder, writer=True)
    assert interruption_message(kept, tmp_path / "run") == (
        f"interrupted while writing the run's first checkpoint; {folder} is kept "
        "(resume=auto starts the run afresh)"
    )
    gone = TrainingInterrupted(None, writer=True)
    assert interruption_message(gone, tmp_path / "run") == (
        "interrupted before the run's first checkpoint; nothing of it is kept"
    )
