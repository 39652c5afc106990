"""Running `epic-ar` in this process and checking its one-line errors (the bad-input tests)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from epic_ar.cli.main import main
from epic_ar.evaluation.results import save_results
from helpers.factories import make_results, write_labels_csv

OPEN = f"{open.__module__}.{open.__qualname__}"  # how a pickle names open(): io.open
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # chmod denies nothing to root
SYNTH = ["--participants", "2", "--videos-per-participant", "1", "--frame-size", "32", "24"]
SYNTH += ["--frames", "4", "6"]
LABELS = [  # for make_results(6): ids P01_01_0..5
    {"narration_id": f"P01_01_{i}", "participant_id": f"P0{1 + i % 2}", "verb_class": i,
     "noun_class": 2 * i}
    for i in range(6)
]  # fmt: skip


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """`epic-ar ARGS` in this process: (exit status, stdout, stderr); usage errors too."""
    try:
        status = main([str(arg) for arg in args])
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_error_line(stderr: str, command: str) -> str:
    """The only error line of `stderr` (no traceback), without its prefix."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, stderr
    assert errors[0].startswith(f"epic-ar {command}: error: "), errors[0]
    return errors[0].removeprefix(f"epic-ar {command}: error: ")


def full_disk(*_: object, **__: object) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() says it: no file name


def make_read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`folder` without write permission: chmod 555, and, when the tests run as root (whom
    chmod denies nothing), the permission check the commands make before writing answers
    as it would for another user."""
    folder.chmod(0o555)
    if AS_ROOT:
        real_access = os.access

        def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
            if Path(path) == folder and mode & os.W_OK:
                return False
            return real_access(path, mode, *args, **kwargs)

        monkeypatch.setattr("epic_ar.fileio.paths.os.access", access)


# Fixtures shared by the bad-input test files (imported there by name).
@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    """A results file of 6 segments (ids P01_01_0..5) in its own folder."""
    path = tmp_path / "inputs" / "r.pt"
    path.parent.mkdir()
    save_results(make_results(6), path)
    return path


@pytest.fixture
def labels_file(tmp_path: Path) -> Path:
    """Labels for `results_file`'s segments."""
    return write_labels_csv(tmp_path / "inputs" / "labels.csv", LABELS)
