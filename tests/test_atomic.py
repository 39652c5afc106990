"""Atomic writes: all or nothing, no overwrite without force."""

from __future__ import annotations

from pathlib import Path

import pytest

from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path


def test_failure_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.pt"
    with pytest.raises(RuntimeError), atomic_write_path(target, force=False) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []


def test_success_replaces_only_with_force(tmp_path: Path) -> None:
    target = tmp_path / "out.pt"
    target.write_bytes(b"old")
    with (
        pytest.raises(EpicArError, match="already exists; pass force=True"),
        atomic_write_path(target, force=False) as tmp,
    ):
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"old"
    with atomic_write_path(target, force=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pt"]
    assert target.stat().st_mode & 0o044  # readable by others, like a normally written file


def test_directory_target_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(EpicArError, match="is a directory"),
        atomic_write_path(tmp_path, force=True),
    ):
        pass
