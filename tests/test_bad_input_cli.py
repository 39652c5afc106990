"""A careless user's outputs and values with synth, show, fuse, submit, evaluate --report and
download: each mistake ends in one `epic-ar <command>: error: ...` line (exit 1; 2 for usage
errors), before any work where it can be known then, with nothing half-written or left behind."""

from __future__ import annotations

import argparse
import errno
import os
import tempfile
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from epic_ar.cli.main import main
from epic_ar.errors import EpicArError
from epic_ar.evaluation import submission
from epic_ar.fileio.atomic import atomic_write_path
from epic_ar.fileio.paths import UnwritablePathError
from epic_ar.synthetic.dataset import SyntheticConfig
from epic_ar.visualize.show import ShowOptions
from helpers.bad_input import (
    SYNTH,
    full_disk,
    make_read_only,
    one_error_line,
    run,
)

# --- 1. Unwritable outputs: a file where a folder should be, no permission, a full disk ---


def output_commands(
    results: Path, labels: Path, mirror: Path
) -> dict[str, Callable[[Path], list[object]]]:
    """Each writing command, given where to write."""
    return {
        "fuse": lambda out: ["fuse", results, results, out / "fused.pt"],
        "submit": lambda out: ["submit", results, out / "s.zip"],
        "evaluate": lambda out: ["evaluate", results, labels, "--report", out / "report"],
        "synth": lambda out: ["synth", out / "data", *SYNTH],
        "download": lambda out: ["download", "tsn_rgb", out, "--url", f"file://{mirror}"],
    }


@pytest.mark.parametrize("command", ["fuse", "submit", "evaluate", "synth", "download"])
def test_output_below_a_file_is_one_line_before_any_work(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    results_file: Path,
    labels_file: Path,
    command: str,
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    mirror = tmp_path / "absent.ckpt"  # never fetched: the output is refused first
    args = output_commands(results_file, labels_file, mirror)[command](blocker / "sub")
    before = sorted(tmp_path.rglob("*"))
    status, out, err = run(capsys, *args)
    assert status == 1
    assert out == ""  # evaluate prints no metrics before failing
    message = one_error_line(err, command)
    assert f"{blocker} is a file, not a folder" in message
    assert message.startswith(str(blocker / "sub"))
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("command", ["fuse", "submit", "evaluate", "synth", "download"])
def test_read_only_folder_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    results_file: Path,
    labels_file: Path,
    command: str,
) -> None:
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    make_read_only(read_only, monkeypatch)
    try:
        args = output_commands(results_file, labels_file, tmp_path / "absent")[command](read_only)
        status, _, err = run(capsys, *args)
        assert status == 1
        assert f"no permission to write in {read_only}" in one_error_line(err, command)
        assert list(read_only.iterdir()) == []
    finally:
        read_only.chmod(0o755)


def test_read_only_disk_met_when_writing_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    results_file: Path,
) -> None:
    # A read-only mount refuses even root, and only when a file is created (EROFS).
    folder = tmp_path / "mounted"

    def read_only_mount(*_: object, dir: str, **__: object) -> Any:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)

    monkeypatch.setattr(tempfile, "mkstemp", read_only_mount)
    status, _, err = run(capsys, "fuse", results_file, results_file, folder / "fused.pt")
    assert status == 1
    assert one_error_line(err, "fuse") == (
        f"{folder / 'fused.pt'}: cannot write in {folder} (Read-only file system)"
    )
    assert not folder.exists()  # the folder made for the output is gone again


def test_full_disk_while_writing_names_the_output_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    results_file: Path,
) -> None:
    import epic_ar.synthetic.render

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(torch, "save", full_disk)  # fuse writes with torch.save
    status, _, err = run(capsys, "fuse", results_file, results_file, out / "fused.pt")
    assert status == 1
    assert (
        one_error_line(err, "fuse") == f"{out / 'fused.pt'}: cannot write (No space left on device)"
    )
    writer = types.SimpleNamespace(ZipFile=full_disk, ZIP_DEFLATED=zipfile.ZIP_DEFLATED)
    monkeypatch.setattr(submission, "zipfile", writer)  # the submission's zip, not the input
    status, _, err = run(capsys, "submit", results_file, out / "s.zip")
    assert status == 1
    assert one_error_line(err, "submit").startswith(f"{out / 's.zip'}: cannot write (No space")
    monkeypatch.setattr(epic_ar.synthetic.render, "_write_tar", full_disk)  # after annotations
    status, _, err = run(capsys, "synth", out / "data", *SYNTH)
    assert status == 1
    assert one_error_line(err, "synth").startswith(f"{out / 'data'}: cannot write (No space")
    assert list(out.iterdir()) == []  # no temp files, no annotations of a half dataset


def test_full_disk_error_is_an_oserror_too(tmp_path: Path) -> None:
    # Code that skips places it cannot write (the tar index cache) catches OSError.
    with pytest.raises(OSError) as caught, atomic_write_path(tmp_path / "x.bin", force=False):
        full_disk()
    assert isinstance(caught.value, UnwritablePathError) and caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_naming_a_file_are_one_line_and_bugs_keep_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import epic_ar.cli.fuse

    def denied(args: argparse.Namespace) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", "/data/r.pt")

    monkeypatch.setattr(epic_ar.cli.fuse, "run", denied)
    status, _, err = run(capsys, "fuse", "a", "b")
    assert status == 1
    assert one_error_line(err, "fuse") == "/data/r.pt: Permission denied"

    def bug(args: argparse.Namespace) -> int:
        raise OSError("an OSError about no file: a programming error")

    monkeypatch.setattr(epic_ar.cli.fuse, "run", bug)
    with pytest.raises(OSError, match="programming error"):
        main(["fuse", "a", "b"])


# --- 1. Values refused: show, synth ---


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--as-input", "--input-size", "0"], "argument --input-size: 0 is not an integer >= 1"),
        (["--fps", "0"], "argument --fps: 0 is not a number > 0"),
        (["--fps", "-5"], "argument --fps: -5 is not a number > 0"),
        (["--fps", "nan"], "argument --fps: nan is not a number > 0"),
        (["--frames", "0"], "argument --frames: 0 is not an integer >= 1"),
    ],
)
def test_show_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], fragment: str
) -> None:
    status, out, err = run(capsys, "show", tmp_path, tmp_path / "s.gif", *args)
    assert status == 2 and out == ""
    assert one_error_line(err, "show") == fragment
    assert not (tmp_path / "s.gif").exists()


def test_show_library_refuses_bad_sizes_and_rates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, _, err = run(capsys, "show", tmp_path, tmp_path / "s.png", "--input-size", "5000")
    assert status == 1
    assert one_error_line(err, "show") == "input_size: 5000 is not an integer 1-1024"
    for fps in (0.0, -5.0, float("inf")):
        with pytest.raises(EpicArError, match=r"^fps: .* is not a number of frames per second"):
            ShowOptions(tmp_path, tmp_path / "s.gif", fps=fps)
    with pytest.raises(EpicArError, match=r"^input_size: 0 is not an integer 1-1024$"):
        ShowOptions(tmp_path, tmp_path / "s.png", input_size=0)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ["--segments-per-video", "0"],
            2,
            "argument --segments-per-video: 0 is not an integer >= 1",
        ),
        (["--seed", "-1"], 2, "argument --seed: -1 is not an integer >= 0"),
        (["--participants", "1"], 2, "argument --participants: 1 is not an integer >= 2"),
        (
            ["--segments-per-video", "1"],
            1,
            "the 2 segments planned leave no validation segments: ask for more segments "
            "(segments_per_video, videos_per_participant or participants)",
        ),
    ],
)
def test_synth_bad_sizes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: list[str],
    status: int,
    message: str,
) -> None:
    got, _, err = run(capsys, "synth", tmp_path / "data", *SYNTH, *args)
    assert got == status
    assert one_error_line(err, "synth") == message
    assert list(tmp_path.iterdir()) == []


def test_synthetic_config_refuses_what_numpy_or_pandas_would_crash_on() -> None:
    with pytest.raises(EpicArError, match=r"^seed: -1 is not an integer >= 0$"):
        SyntheticConfig(seed=-1)
    with pytest.raises(EpicArError, match=r"^segments_per_video: 0 is not an integer >= 1$"):
        SyntheticConfig(segments_per_video=0)


# --- 2. Nothing left behind: synth ---


@pytest.mark.parametrize("failure", [RuntimeError("crash"), KeyboardInterrupt()])
def test_synth_failure_after_the_annotations_leaves_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    failure: BaseException,
) -> None:
    import epic_ar.synthetic.dataset

    written: list[Path] = []

    def fail(out: Path, *_: object) -> None:
        written.extend((out / "annotations").iterdir())  # annotations come first
        raise failure

    monkeypatch.setattr(epic_ar.synthetic.dataset, "write_video_frames", fail)
    if isinstance(failure, KeyboardInterrupt):
        assert run(capsys, "synth", tmp_path / "data", *SYNTH)[0] == 130
    else:
        with pytest.raises(RuntimeError, match="crash"):
            main(["synth", str(tmp_path / "data"), *SYNTH])
    assert any(path.name == "EPIC_100_train.csv" for path in written)
    assert list(tmp_path.iterdir()) == []


def test_synth_force_replaces_only_a_complete_dataset(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import epic_ar.synthetic.render

    out = tmp_path / "data"
    assert run(capsys, "synth", out, *SYNTH)[0] == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert run(capsys, "synth", out, *SYNTH, "--seed", "1")[0] == 1  # exists, no --force
    monkeypatch.setattr(epic_ar.synthetic.render, "_write_tar", full_disk)
    status, _, err = run(capsys, "synth", out, *SYNTH, "--seed", "1", "--force")
    assert status == 1 and "No space left on device" in one_error_line(err, "synth")
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the old dataset is intact
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


# --- 3. evaluate --report: an existing report is not overwritten, nothing printed in vain ---


def test_report_folder_with_files_needs_force_and_is_checked_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, results_file: Path, labels_file: Path
) -> None:
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("an earlier report")
    status, out, err = run(capsys, "evaluate", results_file, labels_file, "--report", report)
    assert status == 1 and out == ""
    assert one_error_line(err, "evaluate") == (
        f"{report}: holds a report (index.html) already; pass --force to write into it"
    )
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"jpeg")
    status, out, err = run(capsys, "evaluate", results_file, labels_file, "--report", other)
    assert status == 1 and out == ""
    assert "holds files already" in one_error_line(err, "evaluate")
    assert [p.name for p in other.iterdir()] == ["holiday.jpg"]
    assert (report / "index.html").read_text() == "an earlier report"
    status, out, err = run(
        capsys, "evaluate", results_file, labels_file, "--report", report, "--force"
    )
    assert status == 0, err
    assert "verb_accuracy_at_1" in out
    assert "<h1>Evaluation report</h1>" in (report / "index.html").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(capsys, "evaluate", results_file, labels_file, "--report", empty)[0] == 0


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    import subprocess

    from helpers.cli import epic_ar_command

    labels = Path(__file__).parents[1] / "examples" / "annotations" / "EPIC_100_validation.csv"
    results = tmp_path / "r.pt"
    subprocess.run(
        [*epic_ar_command(), "synthetic-results", str(labels), str(results)],
        check=True,
        capture_output=True,
    )
    # as `epic-ar evaluate ... | head` when head has already exited
    process = subprocess.Popen(
        [*epic_ar_command(), "evaluate", str(results), str(labels), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait() == 141 and err == ""


def test_synthetic_results_of_no_segments_name_the_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "empty.csv"
    labels.write_text("narration_id,participant_id,video_id,start_frame,stop_frame\n")
    out = tmp_path / "r.pt"
    assert main(["synthetic-results", str(labels), str(out)]) == 1
    assert capsys.readouterr().err == (
        f"epic-ar synthetic-results: error: {labels}: no segments to make results for\n"
    )
    assert not out.exists()
