"""Shared fixtures: the official annotations (kept in the repository) and the CLI runner; the
helpers they use live in the `helpers` package."""

from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from helpers.cli import RunCli, epic_ar_command
from helpers.repository import (
    ANNOTATION_PICKLES,
    EXAMPLE_ANNOTATIONS,
    OFFICIAL_SHA256,
    REPO_ROOT,
    VALIDATION_CSV,
    sha256_of,
)

# Fixtures defined beside the helpers that use them (bad_input: results_file, labels_file).
pytest_plugins = ["helpers.bad_input"]

# Hypothesis draws the same examples on every run, so that a suite that passed passes again
# (CI) and a failure reproduces; HYPOTHESIS_PROFILE=explore draws new ones each run.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Tests import helpers that the benchmark scripts share with them (e.g. resize_vs_pil).
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))


@pytest.fixture(scope="session", autouse=True)
def private_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Caches (indexes of read-only archives and videos, checkpoints fetched by name) go to
    a folder of the test session, never to the user's ~/.cache; commands run by the tests
    inherit it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
        yield


@pytest.fixture(scope="session")
def official_annotations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of official EPIC-KITCHENS-100 annotation files, byte for byte as published:
    the CSVs of examples/annotations (the validation labels, its tail and unseen tables
    beside) and the old-pandas pickles `EPIC_100_validation.pkl` and
    `EPIC_100_test_timestamps.pkl` (from tests/data/)."""
    folder = tmp_path_factory.mktemp("official_annotations")
    for table in EXAMPLE_ANNOTATIONS.glob("EPIC_100_*.csv"):
        shutil.copyfile(table, folder / table.name)
    for name in ("EPIC_100_validation.pkl", "EPIC_100_test_timestamps.pkl"):
        compressed = ANNOTATION_PICKLES / f"{name}.xz"
        (folder / name).write_bytes(lzma.decompress(compressed.read_bytes()))
    for path in folder.iterdir():
        assert sha256_of(path) == OFFICIAL_SHA256[path.name], path.name
    return folder


@pytest.fixture(scope="session")
def validation_labels_csv() -> Path:
    """The real validation labels: the copy vendored in examples/ (tail/unseen tables beside)."""
    return VALIDATION_CSV


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run `epic-ar ARGS...` in a subprocess (cwd: tmp_path); returns the completed process."""

    def run(
        *args: object, cwd: Path = tmp_path, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*epic_ar_command(), *map(str, args)],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    return run
