"""Library messages name the library's parameters; `epic-ar` names its flags in their place,
so the command line prints what it always printed."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest
import torch

from epic_ar.cli.main import command_flags, error_message, one_line_error
from epic_ar.data.config import DataConfig
from epic_ar.errors import EpicArError, Message, Parameter, Suggestion
from epic_ar.evaluation.evaluate import resolve_group_tables
from epic_ar.fileio.atomic import atomic_write_dir, check_can_write
from epic_ar.synthetic.dataset import SyntheticConfig
from epic_ar.training.run_config import plain_run_config
from epic_ar.training.scoring import ScoringOptions, with_frame_source
from epic_ar.visualize.report import check_report_dir
from helpers.bad_input import SYNTH, one_error_line, run

FORCE = Parameter("force", "force=True")


def test_a_message_spells_parameters_for_python_and_flags_for_the_command_line() -> None:
    error = EpicArError("out.pt: already exists; pass ", FORCE, " to overwrite it")
    assert str(error) == "out.pt: already exists; pass force=True to overwrite it"
    assert error.text.parameters == ["force"]
    with_flag = {"force": "--force"}
    assert error_message(error, with_flag) == "out.pt: already exists; pass --force to overwrite it"
    assert error_message(error, {"force": "-f"}) == (
        "out.pt: already exists; pass -f to overwrite it"
    )
    # a command without such a flag keeps the library's spelling
    assert error_message(error, {"workers": "--workers"}) == str(error)
    plain = EpicArError("labels.csv: no such file")
    assert error_message(plain, with_flag) == "labels.csv: no such file"
    assert plain.text.parameters == []


def test_the_parameters_survive_pickling() -> None:
    """Errors cross process boundaries (gulp workers, DataLoader workers) pickled."""
    error = EpicArError(Parameter("verbs"), " must be 1-97 and ", Parameter("nouns"), " 1-300")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is EpicArError and str(copy) == "verbs must be 1-97 and nouns 1-300"
    assert error_message(copy, command_flags("synth")) == "--verbs must be 1-97 and --nouns 1-300"


def test_a_parameter_with_a_value_and_a_suggestion_a_command_can_follow_only_with_its_flag() -> (
    None
):
    data_dir = Parameter("data_dir", "data_dir=DIR", metavar="DIR")
    trust = Parameter("trust", "trust=True")
    hint = Suggestion(
        Message(
            (
                "; or pass ",
                trust,
                " to run it",
            )
        )
    )
    error = EpicArError("x.ckpt: refused; give the data with ", data_dir, hint)
    assert (
        str(error)
        == "x.ckpt: refused; give the data with data_dir=DIR; or pass trust=True to run it"
    )
    assert error.text.parameters == ["data_dir", "trust"]
    both = {"data_dir": "--datadir", "trust": "--trust"}
    assert error_message(error, both) == (
        "x.ckpt: refused; give the data with --datadir DIR; or pass --trust to run it"
    )
    assert error_message(error, {"data_dir": "-d"}) == "x.ckpt: refused; give the data with -d DIR"
    assert error_message(error, {}) == "x.ckpt: refused; give the data with data_dir=DIR"
    copy = pickle.loads(pickle.dumps(error))
    assert error_message(copy, both) == error_message(error, both)


def test_a_missing_stored_gulp_dir_names_data_dir(tmp_path: Path) -> None:
    """(What `epic-ar test` prints: test_scoring.py's
    test_published_checkpoints_score_val_as_the_original.)"""
    stored = tmp_path / "elsewhere" / "rgb_validation"
    with pytest.raises(EpicArError) as refused:
        with_frame_source(DataConfig(val_gulp_dir=str(stored)), "rgb", ScoringOptions(split="val"))
    assert str(refused.value) == (
        f"data.val_gulp_dir stored in the checkpoint: {stored} does not exist here; "
        "give the split's gulp directory with data_dir=DIR"
    )
    assert error_message(refused.value, command_flags("test")) == (
        f"data.val_gulp_dir stored in the checkpoint: {stored} does not exist here; "
        "give the split's gulp directory with --datadir DIR"
    )
    with pytest.raises(EpicArError) as refused:
        with_frame_source(DataConfig(), "rgb", ScoringOptions(split="test"))
    assert error_message(refused.value, command_flags("test")) == (
        "the checkpoint stores no data.test_gulp_dir; give the split's gulp directory with "
        "--datadir DIR"
    )


def test_command_flags_are_read_from_the_parsers() -> None:
    gulp = command_flags("gulp")
    assert gulp["workers"] == "--workers" and gulp["segments_per_chunk"] == "--segments-per-chunk"
    assert "labels" not in gulp and "out" not in gulp  # positional arguments are no flags
    assert command_flags("show")["ids"] == "--ids"
    assert command_flags("evaluate")["use_packaged"] == "--packaged-tables"
    assert command_flags("test")["data_dir"] == "--datadir"
    # Hydra's options, which argparse does not parse, from the command module's FLAGS
    assert command_flags("train")["config_name"] == "--config-name"


def test_existing_outputs_name_force(tmp_path: Path) -> None:
    existing = tmp_path / "out.pt"
    existing.write_bytes(b"old")
    with pytest.raises(EpicArError) as refused:
        check_can_write(existing, force=False)
    assert str(refused.value) == f"{existing}: already exists; pass force=True to overwrite it"
    folder = tmp_path / "data"
    folder.mkdir()
    with pytest.raises(EpicArError) as refused, atomic_write_dir(folder, force=False):
        pass
    assert str(refused.value) == f"{folder}: already exists; pass force=True to replace it"
    (folder / "index.html").write_text("a report")
    with pytest.raises(EpicArError) as refused:
        check_report_dir(folder, force=False)
    assert str(refused.value) == (
        f"{folder}: holds a report (index.html) already; pass force=True to write into it"
    )


def test_synth_class_counts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(EpicArError) as refused:
        SyntheticConfig(verbs=98)
    assert str(refused.value) == "verbs must be 1-97 and nouns 1-300"
    status, out, err = run(capsys, "synth", tmp_path / "data", *SYNTH, "--nouns", "301")
    assert status == 1 and out == ""
    assert one_error_line(err, "synth") == "--verbs must be 1-97 and --nouns 1-300"
    assert not (tmp_path / "data").exists()


def test_a_config_without_run_config_names_config_name() -> None:
    """(What `epic-ar train` prints: test_train.py's
    test_unset_gulp_root_and_missing_config_name.)"""
    with pytest.raises(EpicArError) as refused:
        plain_run_config(None)
    choices = "(tsn_rgb, tsn_flow, trn_rgb, trn_flow, tsm_rgb, tsm_flow)"
    assert str(refused.value) == f"no run config: choose one with config_name {choices}"
    assert error_message(refused.value, command_flags("train")) == (
        f"no run config: choose one with --config-name {choices}"
    )


def test_missing_group_tables_name_use_packaged(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    results_file: Path,
    labels_file: Path,
) -> None:
    with caplog.at_level(logging.WARNING):
        resolve_group_tables(labels_file)
    tail_verbs = labels_file.parent / "EPIC_100_tail_verbs.csv"
    assert caplog.messages[0] == (
        f"{tail_verbs} not found next to the labels; tail verbs metrics left out (give the "
        "file, or use_packaged=True for the official copy)"
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        status, _, err = run(capsys, "evaluate", results_file, labels_file)
    assert status == 0, err
    assert caplog.messages[0] == (
        f"{tail_verbs} not found next to the labels; tail verbs metrics left out (give the "
        "file, or --packaged-tables for the official copy)"
    )


def test_an_error_in_a_data_loader_worker_is_its_own_one_line() -> None:
    # How torch raises a worker's exception again in the main process: the same type,
    # holding the worker's whole traceback.
    loader = torch.utils.data.DataLoader(_Failing(), batch_size=1, num_workers=1)
    with pytest.raises(EpicArError) as caught:
        next(iter(loader))
    assert "Original Traceback" in str(caught.value)
    assert one_line_error(caught.value, {}) == "segment P01_01_0: runs 2.5 s past the video's end"
    plain = EpicArError("P01_01.MP4: holds no video frames")
    assert one_line_error(plain, {}) == "P01_01.MP4: holds no video frames"


class _Failing(torch.utils.data.Dataset[None]):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> None:
        raise EpicArError(f"segment P01_01_{index}: runs 2.5 s past the video's end")
