"""Shared fixtures: the official annotations (kept in the repository), tiny label files, the CLI
runner."""

from __future__ import annotations

import hashlib
import lzma
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epic_ar.evaluation.results import Results

# Fixtures defined beside the helpers that use them (bad_input: results_file, labels_file).
pytest_plugins = ["bad_input"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# Tests import helpers that the benchmark scripts share with them (e.g. resize_vs_pil).
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
EXAMPLE_ANNOTATIONS = REPO_ROOT / "examples" / "annotations"
VALIDATION_CSV = EXAMPLE_ANNOTATIONS / "EPIC_100_validation.csv"
# The official pickles, as an old pandas wrote them, stored xz-compressed (3.9 MB -> 0.5 MB).
ANNOTATION_PICKLES = REPO_ROOT / "tests" / "data" / "annotations"
# sha256 of the files as the official annotation repository publishes them: every copy the
# repository holds (examples/, tests/data/, the packaged tables) is checked against these.
OFFICIAL_SHA256 = {
    "EPIC_100_validation.csv": "35f7932ba0a1127a96cac215a98d35398946f343e3cea9ad6688ed17eee9d75d",
    "EPIC_100_validation.pkl": "169ece7854f4a461e8ee16bbadefeb4542482475ef5df30bb28bd55cd265a91e",
    "EPIC_100_test_timestamps.pkl": (
        "75e28a16547138b05cc769d610d154dea7c8085aea7328e10b7e6c1dfef6ac12"
    ),
    "EPIC_100_verb_classes.csv": "aab8bf210d0234b6facb9b191ae402c03a5f8965d123586b4762d3468a85033e",
    "EPIC_100_noun_classes.csv": "40f0a81c5bd06b33050df9f0bd17cd3c2fccd759f9581e4e5e04fec7562be893",
    "EPIC_100_tail_verbs.csv": "6f124f23759b2bfaa742e071619d78a08b5d2f80147db9919c612c72c9774c94",
    "EPIC_100_tail_nouns.csv": "62e3449a7a95fdcb43bc2eaa52a191844f4a566ff1178d2c867b0c0822387266",
    "EPIC_100_unseen_participant_ids_validation.csv": (
        "1274797112b20dd821cd10f62537545e669c4b7d742e36590e9f0f7ffb0c6a54"
    ),
    "EPIC_100_unseen_participant_ids_test.csv": (
        "85068fba968e33c73706bca0c7b212777bc2280ad6556550baab6d91042b382b"
    ),
}


def sha256_of(path: Path) -> str:
    """Hex sha256 of the file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


def make_results(n: int, *, seed: int = 0, prefix: str = "P01_01_") -> Results:
    """N segments of random float32 logits with ids `{prefix}{i}`."""
    rng = np.random.default_rng(seed)
    return Results(
        rng.standard_normal((n, 97), dtype=np.float32),
        rng.standard_normal((n, 300), dtype=np.float32),
        np.array([f"{prefix}{i}" for i in range(n)]),
        {},
    )


def write_labels_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    """An annotation CSV in the official column layout (only the columns given)."""
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def epic_ar_command() -> list[str]:
    """The installed console script next to this interpreter (falls back to -m)."""
    script = Path(sys.executable).parent / "epic-ar"
    return [str(script)] if script.exists() else [sys.executable, "-m", "epic_ar"]


RunCli = Callable[..., subprocess.CompletedProcess[str]]


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
