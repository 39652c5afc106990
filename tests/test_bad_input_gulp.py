"""A careless user against gulp, gulp-check, convert-flow-idxs and the annotation and gulp
readers: every mistake ends in one `epic-ar <command>: error: ...` line (exit 1, 2 for
usage), and nothing half-written is left behind."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pandas as pd
import pytest
import simplejpeg

from epic_ar.cli.main import main
from epic_ar.data.segment_sources import ArchiveSegments
from epic_ar.errors import EpicArError
from epic_ar.evaluation.results import save_results
from epic_ar.gulp import GulpDirectory
from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.synthetic.dataset import SyntheticConfig
from helpers.bad_input import make_read_only
from helpers.cli import RunCli, epic_ar_command
from helpers.factories import make_results
from helpers.gulp_data import SyntheticData, make_synthetic_data
from test_gulp_resume import alive, children, snapshot

# Resizing makes every frame cost a decode and an encode: a -j 2 job of a few seconds.
INTERRUPTIBLE = SyntheticConfig(
    participants=2,
    videos_per_participant=2,
    segments_per_video=16,
    frame_width=160,
    frame_height=90,
    min_frames=16,
    max_frames=40,
    layouts=("tar",),
    seed=13,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> SyntheticData:
    return make_synthetic_data(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def gulped(data: SyntheticData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RGB gulp directory of 3-segment chunks (copy it before spoiling it)."""
    out = tmp_path_factory.mktemp("gulped") / "rgb"
    run_gulp(
        GulpJob(data.frames("tar", "rgb"), out, data.labels("rgb"), "rgb", segments_per_chunk=3)
    )
    return out


def run_main(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """`epic-ar ARGS` in this process: (exit status, stdout, stderr)."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as exc:  # argparse usage errors
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def gulp_rgb(
    capsys: pytest.CaptureFixture[str],
    data: SyntheticData,
    out: Path,
    *options: object,
    labels: Path | None = None,
    frames: Path | None = None,
) -> tuple[int, str, str]:
    """`epic-ar gulp FRAMES OUT LABELS rgb OPTIONS` in this process (default: the tar frames
    and train labels of `data`)."""
    frames = frames or data.frames("tar", "rgb")
    return run_main(capsys, "gulp", frames, out, labels or data.labels("rgb"), "rgb", *options)


def the_error_line(stderr: str, command: str) -> str:
    """The one line of `stderr` that is not progress: `epic-ar COMMAND: error: ...`."""
    lines = [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(("gulp rgb:", "gulp flow:", "gulp-check:"))
    ]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"epic-ar {command}: error: "), stderr
    return lines[0]


def labels_with(data: SyntheticData, path: Path, row: int, **values: object) -> Path:
    """A copy of the RGB train labels with the columns of data row `row` replaced."""
    labels = pd.read_csv(data.labels("rgb")).astype({k: object for k in values})
    for column, value in values.items():
        labels.loc[row, column] = value
    labels.to_csv(path, index=False)
    return path


# 1. Ctrl-C stops a parallel job at once; the re-run completes it, byte-identical.


@dataclass(frozen=True)
class Interruptible:
    data: SyntheticData
    reference: Path  # the uninterrupted job's output

    def command(self, out: Path) -> list[str]:
        frames, labels = self.data.frames("tar", "rgb"), self.data.labels("rgb")
        options = ["--frame-size", "40", "--segments-per-chunk", "1", "-j", "2"]
        return [*epic_ar_command(), "gulp", str(frames), str(out), str(labels), "rgb", *options]


@pytest.fixture(scope="module")
def interruptible(tmp_path_factory: pytest.TempPathFactory) -> Interruptible:
    root = tmp_path_factory.mktemp("interruptible")
    job = Interruptible(make_synthetic_data(root, INTERRUPTIBLE), root / "reference")
    subprocess.run(job.command(job.reference), check=True, capture_output=True, timeout=300)
    return job


# Runs the command (argv[1:], in place) with SIGINT handled by default and not blocked, as
# in a terminal, whatever the test process passes on: under pytest-xdist the job otherwise
# ignored SIGINT and ran to the end.
ANSWERING_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("target", ["parent", "group"])
def test_ctrl_c_stops_parallel_gulp_and_the_rerun_finishes_it(
    interruptible: Interruptible, tmp_path: Path, target: str
) -> None:
    """`parent`: SIGINT to the command only (`kill -INT`); `group`: to all its processes,
    as Ctrl-C on a terminal does. On a loaded machine the job can finish its few seconds
    of work before the signal lands: then it is started again (3 tries)."""
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        job = subprocess.Popen(
            [*ANSWERING_SIGINT, *interruptible.command(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a process group of its own, like a terminal's job
        )
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while job.poll() is None and not list(out.glob("meta_*.gmeta")):
            assert time.monotonic() < deadline, "no chunk written in 2 minutes"
            if len(workers) < 2:
                workers = children(job.pid)
            time.sleep(0.002)
        if len(workers) < 2:
            workers = children(job.pid)
        before = len(list(out.glob("meta_*.gmeta")))
        if target == "parent":
            job.send_signal(signal.SIGINT)
        else:
            os.killpg(job.pid, signal.SIGINT)
        try:
            _, stderr = job.communicate(timeout=3)  # generous: it stops in well under a second
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
            job.communicate()
            pytest.fail("gulp -j 2 went on working for 3 s after SIGINT")
        if job.returncode != 0:
            break  # interrupted (0: it had finished before the signal came)
    assert job.returncode == 130
    stopped = [line for line in stderr.decode().splitlines() if not line.startswith("gulp rgb:")]
    assert len(workers) >= 2
    deadline = time.monotonic() + 2
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if alive(pid)], "processes outlived the interrupted job"
    # at most the chunks being written when the signal came were completed after it
    after = len(list(out.glob("meta_*.gmeta")))
    total = len(list(interruptible.reference.glob("meta_*.gmeta")))
    assert stopped == [
        f"epic-ar gulp: interrupted: {out}: an unfinished gulp ({after} of {total} chunks "
        "written); run the same epic-ar gulp command again to finish it"
    ], stderr.decode()
    assert after <= before + 3 < len(list(interruptible.reference.glob("meta_*.gmeta")))
    assert not list(out.glob(".*.tmp"))

    subprocess.run(interruptible.command(out), check=True, capture_output=True, timeout=300)
    assert snapshot(out) == snapshot(interruptible.reference)


# 2. A JPEG with a corrupt body (markers intact) stops the job, or is skipped.


def corrupt_body(path: Path) -> None:
    """Zero 40 bytes in the middle of the entropy-coded data, after the scan header."""
    jpeg = bytearray(path.read_bytes())
    scan = jpeg.index(b"\xff\xda") + 16
    middle = (scan + len(jpeg) - 2) // 2
    jpeg[middle - 20 : middle + 20] = bytes(40)
    path.write_bytes(bytes(jpeg))


def test_corrupt_jpeg_body_stops_gulp_or_is_skipped(
    data: SyntheticData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    shutil.copytree(data.frames("official", "rgb"), frames)
    labels = pd.read_csv(data.labels("rgb"))
    row = labels.iloc[4]
    victim = frames / row.participant_id / "rgb_frames" / row.video_id
    victim = victim / f"frame_{row.start_frame + 1:010d}.jpg"
    corrupt_body(victim)
    jpeg = victim.read_bytes()
    assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")
    assert simplejpeg.decode_jpeg_header(jpeg)[:2] == (48, 64)  # the header still reads
    with pytest.raises(ValueError, match="Corrupt JPEG data"):
        simplejpeg.decode_jpeg(jpeg)

    out = tmp_path / "stopped"
    status, _, err = gulp_rgb(capsys, data, out, "--segments-per-chunk", 3, frames=frames)
    assert status == 1
    line = the_error_line(err, "gulp")
    assert f"segment {row.narration_id}" in line and "corrupt JPEG data" in line
    assert str(victim) in line
    assert sorted(p.name for p in out.glob("*.gmeta")) == ["meta_0.gmeta"]  # kept for a rerun

    out = tmp_path / "skipped"
    options = ("--segments-per-chunk", 3, "--on-missing", "skip")
    status, stdout, _ = gulp_rgb(capsys, data, out, *options, frames=frames)
    assert status == 0
    stored = GulpDirectory(out)
    assert len(stored) == len(labels) - 1 and row.narration_id not in stored
    # the count reported is the count stored (it used to include the skipped segment)
    assert f"gulped {len(labels) - 1} segments" in stdout
    assert pd.read_csv(out / "skipped.csv").narration_id.tolist() == [row.narration_id]
    assert run_main(capsys, "gulp-check", out)[0] == 0

    # opting out of the check stores the frame, and gulp-check finds it later
    out = tmp_path / "unchecked"
    status, _, _ = gulp_rgb(capsys, data, out, "--no-decode-check", frames=frames)
    assert status == 0 and len(GulpDirectory(out)) == len(labels)
    status, stdout, _ = run_main(capsys, "gulp-check", out)
    assert status == 1 and f"segment {row.narration_id} frame 1: does not decode" in stdout


# 3. No traceback: unwritable output, gulp meta of the wrong shape, bad frame numbers and
# bad --frame-size values.


def test_output_under_a_file_is_refused_in_one_line(
    data: SyntheticData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    for out in (blocker / "gulp", blocker):
        status, _, err = gulp_rgb(capsys, data, out)
        assert status == 1
        assert str(out) in the_error_line(err, "gulp")
    assert blocker.read_text() == "keep me"


def test_read_only_output_folder_is_refused_in_one_line(
    data: SyntheticData,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    make_read_only(locked, monkeypatch)
    try:
        status, _, err = gulp_rgb(capsys, data, locked / "g")
    finally:
        locked.chmod(0o755)
    assert status == 1
    assert "no permission" in the_error_line(err, "gulp")
    assert list(locked.iterdir()) == []


def test_full_disk_is_one_line_and_leaves_nothing(
    data: SyntheticData,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full_disk(path: Path, chunks: object) -> None:
        path.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("epic_ar.gulp.writer._fsync_write", full_disk)
    out = tmp_path / "new" / "g"
    status, _, err = gulp_rgb(capsys, data, out)
    assert status == 1
    line = the_error_line(err, "gulp")
    assert str(out) in line and os.strerror(errno.ENOSPC) in line
    assert list(tmp_path.iterdir()) == []  # no temp file, manifest or folder left


# content of meta_1.gmeta: (what the readers say after the file name, what gulp-check says)
WRONG_SHAPES: dict[str, tuple[object, str, str]] = {
    "a list": ([], "holds a list", ""),
    "a number for a segment": ({"x": 1}, "segment 'x': is a number", ""),
    "no frame_info": ({"x": {"meta_data": [{}]}}, "segment 'x': has no 'frame_info'", ""),
    "frame_info not a list": (
        {"x": {"frame_info": 3, "meta_data": []}},
        "segment 'x': 'frame_info' is a number",
        "",
    ),
    "a short record": (
        {"x": {"frame_info": [[0, 0]], "meta_data": []}},
        "segment 'x': 'frame_info' record 0 is [0,0], not [offset, padding, length]",
        "data_1.gulp: segment x frame 0: record [0, 0] is not [offset, pad, length]",
    ),
    "meta_data of numbers": (
        {"x": {"frame_info": [], "meta_data": [7]}},
        "segment 'x': 'meta_data' holds a number",
        "",
    ),
}


@pytest.mark.parametrize("case", WRONG_SHAPES)
def test_gulp_meta_of_the_wrong_shape_is_named(
    gulped: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    content, fragment, check_fragment = WRONG_SHAPES[case]
    spoiled = tmp_path / "spoiled"
    shutil.copytree(gulped, spoiled)
    meta = spoiled / "meta_1.gmeta"
    meta.write_bytes(orjson.dumps(content))

    status, out, err = run_main(capsys, "gulp-check", spoiled)
    assert status == 1
    assert f"{spoiled}: " in the_error_line(err, "gulp-check")
    assert (check_fragment or f"{meta}: {fragment}") in out.splitlines()[0]

    status, _, err = run_main(capsys, "show", spoiled, tmp_path / "sheet.png")
    assert status == 1
    assert f"{meta}: {fragment}" in the_error_line(err, "show")
    assert not (tmp_path / "sheet.png").exists()

    with pytest.raises(EpicArError, match=re.escape(f"{meta}: {fragment}")):
        GulpDirectory(spoiled)  # what test and train open


@pytest.mark.parametrize(
    ("value", "described"), [("abc", "'abc'"), (12.5, "12.5"), (-3, "-3"), ("", "empty")]
)
def test_bad_start_frame_is_named_by_every_reader(
    data: SyntheticData,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    value: object,
    described: str,
) -> None:
    labels = labels_with(data, tmp_path / "labels.csv", 5, start_frame=value)
    segment = pd.read_csv(data.labels("rgb")).narration_id[5]
    expected = f"{labels}: start_frame of segment {segment} (data row 6) is {described}"
    runs = {
        "convert-flow-idxs": ("convert-flow-idxs", labels, tmp_path / "flow.csv"),
        "gulp": ("gulp", data.frames("tar", "rgb"), tmp_path / "g", labels, "rgb"),
        "show": ("show", data.frames("tar", "rgb"), tmp_path / "s.png", "--labels", labels),
    }
    for command, args in runs.items():
        status, _, err = run_main(capsys, *args)
        assert status == 1, command
        assert expected in the_error_line(err, command)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv"]
    # `test --frames-dir` reads its segments this way
    with pytest.raises(EpicArError, match=re.escape(expected)):
        ArchiveSegments(data.frames("tar", "flow"), "flow", labels)


@pytest.mark.parametrize("size", ["0", "-7", "x"])
def test_bad_frame_size_is_a_usage_error(
    data: SyntheticData, tmp_path: Path, capsys: pytest.CaptureFixture[str], size: str
) -> None:
    status, _, err = gulp_rgb(capsys, data, tmp_path / "g", f"--frame-size={size}")
    assert status == 2
    assert "argument --frame-size" in err.splitlines()[-1]
    assert not (tmp_path / "g").exists()
    with pytest.raises(EpicArError, match="frame_size must be -1"):
        run_gulp(GulpJob(data.frames("tar", "rgb"), tmp_path / "g", data.labels("rgb"), "rgb", 0))


# 4. A failed job leaves nothing that blocks the fixed re-run.


def test_failed_first_chunk_leaves_nothing_and_the_fixed_rerun_works(
    data: SyntheticData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = labels_with(data, tmp_path / "bad.csv", 1, video_id="P01_77")
    out = tmp_path / "g"
    status, _, err = gulp_rgb(capsys, data, out, labels=bad)
    assert status == 1 and "unknown video P01_77" in the_error_line(err, "gulp")
    assert not out.exists()
    status, _, _ = gulp_rgb(capsys, data, out)
    assert status == 0
    assert len(GulpDirectory(out)) == len(pd.read_csv(data.labels("rgb")))


def test_a_manifest_without_chunks_is_replaced(
    data: SyntheticData, gulped: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "g"
    out.mkdir()
    # as a job killed before its first chunk leaves it, with other inputs than this one
    shutil.copy(gulped / ".epic_ar_gulp.json", out)
    (out / ".skipped_0.json").write_bytes(b'[["x", "old"]]')
    status, _, err = gulp_rgb(capsys, data, out, "--segments-per-chunk", 4)
    assert status == 0, err
    assert len(GulpDirectory(out)) == len(pd.read_csv(data.labels("rgb")))
    assert not (out / ".skipped_0.json").exists()
    # with chunks, other inputs are still refused
    status, _, err = gulp_rgb(capsys, data, out)
    assert status == 1 and "other inputs" in the_error_line(err, "gulp")


# 5. Values that used to be accepted silently.


def test_convert_flow_idxs_refuses_what_it_cannot_convert(
    data: SyntheticData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = labels_with(data, tmp_path / "unknown.csv", 2, video_id="kitchen7")
    segment = pd.read_csv(unknown).narration_id[2]
    out = tmp_path / "flow.csv"
    status, _, err = run_main(capsys, "convert-flow-idxs", unknown, out)
    assert status == 1
    line = the_error_line(err, "convert-flow-idxs")
    assert f"video 'kitchen7' (segment {segment})" in line and "--unknown-video-stride" in line
    assert not out.exists()

    assert run_main(capsys, "convert-flow-idxs", unknown, out, "--unknown-video-stride", 2)[0] == 0
    source, converted = pd.read_csv(unknown), pd.read_csv(out)
    assert converted.start_frame[2] == (source.start_frame[2] - 1) // 2 + 1
    assert (converted.frame_numbers == "flow").all()

    again = tmp_path / "twice.csv"
    status, _, err = run_main(capsys, "convert-flow-idxs", out, again)
    assert status == 1
    assert "already holds flow frame numbers" in the_error_line(err, "convert-flow-idxs")
    assert not again.exists()
    # nor can RGB frames be gulped (or read) at flow frame numbers
    status, _, err = gulp_rgb(capsys, data, tmp_path / "g", labels=out)
    assert status == 1 and "holds flow frame numbers" in the_error_line(err, "gulp")
    with pytest.raises(EpicArError, match="holds flow frame numbers"):
        ArchiveSegments(data.frames("tar", "rgb"), "rgb", data.labels("flow"))


def test_fractional_stop_frame_is_refused_naming_the_row(
    data: SyntheticData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = labels_with(data, tmp_path / "labels.csv", 3, stop_frame=12.5)
    segment = pd.read_csv(labels).narration_id[3]
    status, _, err = gulp_rgb(capsys, data, tmp_path / "g", labels=labels)
    assert status == 1
    line = the_error_line(err, "gulp")
    assert f"stop_frame of segment {segment} (data row 4) is 12.5" in line
    assert not (tmp_path / "g").exists()


# 6. Messages that misled.


def test_missing_or_garbage_labels_is_one_line(
    data: SyntheticData, tmp_path: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run_cli("gulp", data.frames("tar", "rgb"), tmp_path / "g", tmp_path / "none.csv", "rgb")
    assert done.returncode == 1
    assert done.stderr == f"epic-ar gulp: error: {tmp_path / 'none.csv'}: no such file\n"
    # evaluate used to warn three times about the tables beside the missing file first
    save_results(make_results(4), tmp_path / "results.pt")
    done = run_cli("evaluate", tmp_path / "results.pt", tmp_path / "none.csv")
    assert done.returncode == 1
    assert done.stderr == f"epic-ar evaluate: error: {tmp_path / 'none.csv'}: no such file\n"
    (tmp_path / "results.pt").unlink()
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("a,b\n1,2\n1,2,3,4\n")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    for labels, fragment in [(garbage, "not a readable CSV file"), (folder, "is a folder")]:
        for args in [
            ("convert-flow-idxs", labels, tmp_path / "o.csv"),
            ("gulp", data.frames("tar", "rgb"), tmp_path / "g", labels, "rgb"),
        ]:
            status, _, err = run_main(capsys, *args)
            assert status == 1
            assert f"{labels}: {fragment}" in the_error_line(err, str(args[0]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.csv", "garbage.csv"]


def test_a_folder_holding_other_files_is_refused(
    data: SyntheticData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    status, _, err = gulp_rgb(capsys, data, out)
    assert status == 1
    assert the_error_line(err, "gulp").endswith(
        f"{out}: holds other files (not a gulp job's); give a new or empty folder"
    )
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


# 9. Frame numbers far beyond a video, and archives that change or lie about their frames.


def test_a_stop_frame_far_past_the_video_fails_on_that_frame(
    data: SyntheticData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = pd.read_csv(data.labels("rgb"))
    stop = int(labels.stop_frame.max()) + 100_000  # the names are not listed one by one
    path = labels_with(data, tmp_path / "far.csv", 2, stop_frame=stop)
    status, _, err = gulp_rgb(capsys, data, tmp_path / "out", labels=path)
    line = the_error_line(err, "gulp")
    assert status == 1 and f"segment {labels.narration_id[2]} " in line
    assert line.endswith(f"missing frame {data.frames('tar', 'rgb')}/"
                         f"{labels.participant_id[2]}/rgb_frames/{labels.video_id[2]}.tar:"
                         f"frame_{stop:010d}.jpg")  # fmt: skip


def test_flow_labels_without_the_flow_marker_are_warned_about_and_hinted_at(
    data: SyntheticData,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    labels = pd.read_csv(data.labels("rgb"))  # RGB frame numbers, no frame_numbers column
    old = labels.video_id.str.fullmatch(r"P\d+_\d\d")  # 2018 videos: flow at stride 2
    row = int(old.to_numpy().argmax())
    assert old[row]
    stop = int(labels.stop_frame.max()) * 2
    path = labels_with(data, tmp_path / "rgb_numbers.csv", row, stop_frame=stop)
    status, _, err = run_main(
        capsys, "gulp", data.frames("tar", "flow"), tmp_path / "out", path, "flow"
    )
    assert caplog.messages == [
        f"{path}: does not say it holds flow frame numbers (no frame_numbers column, "
        "which epic-ar convert-flow-idxs writes); its "
        f"{int(old.sum())} segments of 2018 videos are read as flow frame numbers. If they "
        "are RGB ones, convert the file first"
    ]
    line = the_error_line(err, "gulp")
    assert status == 1 and f"stop_frame {stop}: missing frame " in line
    assert line.endswith(
        "(do the annotations hold flow frame numbers? epic-ar convert-flow-idxs converts RGB ones)"
    )
    # converted labels carry the marker: no warning
    caplog.clear()
    status, _, err = run_main(
        capsys, "gulp", data.frames("tar", "flow"), tmp_path / "ok", data.labels("flow"), "flow"
    )
    assert status == 0 and caplog.messages == []


def test_tar_members_numbered_far_beyond_the_archive_are_refused(tmp_path: Path) -> None:
    import io
    import tarfile

    from epic_ar.data.tar_index import build_tar_index

    archive = tmp_path / "P01_01.tar"
    with tarfile.open(archive, "w") as tar:
        for number in (1, 2, 20_000_000):
            member = tarfile.TarInfo(f"./frame_{number:010d}.jpg")
            member.size = 3
            tar.addfile(member, io.BytesIO(b"abc"))
    with pytest.raises(EpicArError) as caught:
        build_tar_index(archive)  # a dense table would take 320 MB
    assert str(caught.value) == (
        f"{archive}: a member is named frame number 20000000, far beyond the archive's 3 "
        "frames (not an EPIC frame archive?)"
    )


def test_an_archive_cut_short_after_it_was_opened_is_named(tmp_path: Path) -> None:
    import io
    import tarfile

    from epic_ar.gulp.sources import TarSource

    archive = tmp_path / "P01_01.tar"
    with tarfile.open(archive, "w") as tar:
        member = tarfile.TarInfo("./frame_0000000001.jpg")
        member.size = 5000
        tar.addfile(member, io.BytesIO(bytes(5000)))
    source = TarSource(archive)
    with archive.open("r+b") as file:
        file.truncate(512 + 1000)
    with pytest.raises(EpicArError) as caught:
        source.read("frame_0000000001.jpg")
    source.close()
    assert str(caught.value) == (
        f"{archive}:frame_0000000001.jpg: truncated (1000 of 5000 bytes; the archive ends early)"
    )


def test_a_truncated_or_corrupt_chunk_is_named_when_read(gulped: Path, tmp_path: Path) -> None:
    from epic_ar.data.dataset import build_dataset

    spoiled = tmp_path / "rgb"
    shutil.copytree(gulped, spoiled)
    meta = orjson.loads((spoiled / "meta_1.gmeta").read_bytes())
    first, last = next(iter(meta)), list(meta)[-1]
    data_file = spoiled / "data_1.gulp"
    data_file.write_bytes(data_file.read_bytes()[: meta[last]["frame_info"][0][0] + 10])
    dataset = build_dataset(spoiled, train=False, frame_count=2, input_size=16, scale_size=20)
    row = list(dataset.table.narration_id).index(last)
    with pytest.raises(EpicArError) as caught:
        dataset[row]
    assert str(caught.value) == (
        f"segment {last}: {data_file}: ends before the frames of segment {last} that its meta "
        "file lists (truncated? run epic-ar gulp-check)"
    )
    # bytes that do not decode: the message says where the segment's frames are
    offset, _, length = meta[first]["frame_info"][0]
    body = bytearray(data_file.read_bytes())
    body[offset : offset + length] = b"\xff\xd8" + b"\xff\xf7" * ((length - 4) // 2) + b"\xff\xd9"
    data_file.write_bytes(bytes(body))
    row = list(dataset.table.narration_id).index(first)
    with pytest.raises(EpicArError) as caught:
        build_dataset(spoiled, train=True, frame_count=8, input_size=16)[row]
    message = str(caught.value)
    assert message.startswith(f"segment {first}: ") and message.endswith(f" (frames in {spoiled})")
