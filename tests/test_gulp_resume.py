"""Kill `epic-ar gulp` with SIGKILL at random moments, re-run it, and compare with an
uninterrupted run: the same files, byte for byte, every segment exactly once."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from epic_ar.errors import EpicArError
from epic_ar.gulp import GulpDirectory
from epic_ar.synthetic.dataset import SyntheticConfig
from helpers.cli import epic_ar_command
from helpers.gulp_data import SyntheticData, make_synthetic_data

MEDIUM = SyntheticConfig(
    participants=3,
    videos_per_participant=2,
    segments_per_video=20,
    frame_width=160,
    frame_height=90,
    min_frames=16,
    max_frames=40,
    layouts=("tar",),
    seed=11,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> SyntheticData:
    return make_synthetic_data(tmp_path_factory.mktemp("medium"), MEDIUM)


def gulp_command(data: SyntheticData, out: Path, workers: int) -> list[str]:
    # Resizing makes every frame cost a decode and an encode: a job long enough to kill.
    return [
        *epic_ar_command(),
        "gulp",
        str(data.frames("tar", "rgb")),
        str(out),
        str(data.labels("rgb")),
        "rgb",
        "--frame-size",
        "40",
        "--segments-per-chunk",
        "2",
        "-j",
        str(workers),
    ]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def committed(out: Path) -> int:
    return len(list(out.glob("meta_*.gmeta"))) if out.is_dir() else 0


def run_and_kill(command: list[str], out: Path, rng: random.Random) -> bool:
    """Start the job, wait until it has committed new chunks, SIGKILL it a moment later.

    Returns whether the kill hit a running job (False: it had finished already).
    """
    before = committed(out)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while process.poll() is None and committed(out) <= before and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.05))
    running = process.poll() is None
    workers = children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while workers and time.monotonic() < deadline:
        workers = {pid for pid in workers if alive(pid)}
        time.sleep(0.05)
    assert not workers, f"worker processes {sorted(workers)} outlived the killed job"
    return running


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()  # after "pid (name) ": state, ppid, ...


def children(pid: int) -> set[int]:
    """Linux: the processes whose parent is `pid` (empty elsewhere)."""
    found = set()
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_and_resumed_runs_equal_an_uninterrupted_run(
    data: SyntheticData, tmp_path: Path, workers: int
) -> None:
    reference = tmp_path / "reference"
    subprocess.run(gulp_command(data, reference, workers), check=True, capture_output=True)
    chunks = committed(reference)

    out = tmp_path / "resumed"
    rng = random.Random(workers)
    kills = 0
    while kills < 4 and committed(out) < chunks:
        kills += run_and_kill(gulp_command(data, out, workers), out, rng)
    assert kills >= 3, f"only {kills} kills landed while the job was running"
    assert committed(out) < chunks, "the job finished before the last kill"
    subprocess.run(gulp_command(data, out, workers), check=True, capture_output=True)

    assert snapshot(out) == snapshot(reference)
    ids = GulpDirectory(out).segment_ids
    assert ids == pd.read_csv(data.labels("rgb"))["narration_id"].tolist()


def test_orphan_data_and_stale_temp_files_are_replaced(data: SyntheticData, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    subprocess.run(gulp_command(data, reference, 1), check=True, capture_output=True)
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    # As if killed between renaming chunk 5's data and its meta, with temp files around.
    (out / "meta_5.gmeta").unlink()
    (out / "data_5.gulp").write_bytes(b"half a chunk")
    (out / "meta_7.gmeta").unlink()
    (out / ".data_7.gulp.123.tmp").write_bytes(b"partial")
    (out / ".meta_7.gmeta.123.tmp").write_bytes(b"{")
    subprocess.run(gulp_command(data, out, 1), check=True, capture_output=True)
    assert snapshot(out) == snapshot(reference)


def test_an_unfinished_directory_is_refused_until_the_job_is_rerun(
    data: SyntheticData, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    subprocess.run(gulp_command(data, reference, 1), check=True, capture_output=True)
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    segments = len(pd.read_csv(data.labels("rgb")))
    total = (segments + 1) // 2  # --segments-per-chunk 2
    for chunk in (3, 4, 9):  # as if the job had stopped with these chunks unwritten
        (out / f"meta_{chunk}.gmeta").unlink()
        (out / f"data_{chunk}.gulp").unlink()
    expected = (
        f"{out}: an unfinished gulp ({total - 3} of {total} chunks written); "
        "run the same epic-ar gulp command again to finish it"
    )
    with pytest.raises(EpicArError) as caught:
        GulpDirectory(out)
    assert str(caught.value) == expected
    check = subprocess.run(
        [*epic_ar_command(), "gulp-check", str(out)], check=False, capture_output=True, text=True
    )
    assert check.returncode == 1 and expected in check.stdout + check.stderr
    subprocess.run(gulp_command(data, out, 1), check=True, capture_output=True)
    assert snapshot(out) == snapshot(reference)
    assert len(GulpDirectory(out)) == segments
    # A directory without epic-ar's manifest (another tool's) is read as it is.
    (out / ".epic_ar_gulp.json").unlink()
    (out / "meta_3.gmeta").unlink()
    assert len(GulpDirectory(out)) == segments - 2


def test_ctrl_c_says_how_far_the_job_got(data: SyntheticData, tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen(
        gulp_command(data, out, 1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while process.poll() is None and committed(out) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    total = (len(pd.read_csv(data.labels("rgb"))) + 1) // 2
    if process.returncode == 0:
        pytest.skip("the job finished before the interrupt")
    assert process.returncode == 130
    written = committed(out)
    assert 2 <= written < total
    assert err.strip().splitlines()[-1] == (
        f"epic-ar gulp: interrupted: {out}: an unfinished gulp ({written} of {total} chunks "
        "written); run the same epic-ar gulp command again to finish it"
    )
