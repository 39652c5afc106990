"""Gulp directories: ingest from every layout, the gulpio2 format both ways, resizing,
bad input, the reader, and gulp-check."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from epic_ar.errors import EpicArError
from epic_ar.gulp import GulpDirectory
from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.gulp.jpeg import decode_jpeg, encode_jpeg
from epic_ar.gulp.segments import resized_size
from epic_ar.gulp.sources import open_video
from epic_ar.modality import Modality
from helpers.bad_input import one_error_line, run
from helpers.cli import RunCli
from helpers.gulp_data import SyntheticData, make_synthetic_data

LAYOUTS = ("folders", "official", "tar")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> SyntheticData:
    return make_synthetic_data(tmp_path_factory.mktemp("synthetic"))


def gulp(
    data: SyntheticData, out: Path, modality: Modality, layout: str = "tar", **kw: Any
) -> Path:
    job = GulpJob(
        data.frames(layout, modality),
        out,
        data.labels(modality),
        modality,
        segments_per_chunk=kw.pop("segments_per_chunk", 3),
        **kw,
    )
    run_gulp(job)
    return out


def directory_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_every_layout_gives_the_same_directory(
    data: SyntheticData, tmp_path: Path, modality: Modality
) -> None:
    outputs = [
        directory_bytes(gulp(data, tmp_path / layout, modality, layout)) for layout in LAYOUTS
    ]
    assert outputs[0] == outputs[1] == outputs[2]
    chunks = -(-len(pd.read_csv(data.labels(modality))) // 3)
    names = [f"data_{i}.gulp" for i in range(chunks)] + [f"meta_{i}.gmeta" for i in range(chunks)]
    assert sorted(outputs[0]) == sorted([".epic_ar_gulp.json", *names])


def test_rgb_segments_store_the_source_jpegs_unchanged(data: SyntheticData, tmp_path: Path) -> None:
    directory = GulpDirectory(gulp(data, tmp_path / "g", "rgb"))
    labels = pd.read_csv(data.labels("rgb")).set_index("narration_id")
    assert directory.segment_ids == labels.index.tolist()  # annotation order
    for segment_id in directory.segment_ids:
        row = labels.loc[segment_id]
        count = row.stop_frame - row.start_frame + 1
        meta = directory.meta(segment_id)
        assert meta["num_frames"] == directory.num_frames(segment_id) == count
        assert meta["frame_size"] == [48, 64, 3]
        assert {k: meta[k] for k in ("narration_id", "verb_class", "noun_class", "narration")} == {
            "narration_id": segment_id,
            "verb_class": row.verb_class,
            "noun_class": row.noun_class,
            "narration": row.narration,
        }
        assert set(labels.reset_index().columns) <= set(meta)
        source = open_video(data.frames("official", "rgb"), row.participant_id, row.video_id, "rgb")
        expected = [source.read(f"frame_{n:010d}.jpg") for n in (row.start_frame, row.stop_frame)]
        assert directory.read_jpegs(segment_id, [0, -1]) == expected


def test_flow_segments_store_interleaved_pairs_stop_exclusive(
    data: SyntheticData, tmp_path: Path
) -> None:
    directory = GulpDirectory(gulp(data, tmp_path / "g", "flow"))
    labels = pd.read_csv(data.labels("flow")).set_index("narration_id")
    segment_id = directory.segment_ids[2]
    row = labels.loc[segment_id]
    pairs = row.stop_frame - row.start_frame  # frames start..stop-1
    assert directory.meta(segment_id)["num_frames"] == pairs
    assert directory.num_frames(segment_id) == 2 * pairs
    assert directory.meta(segment_id)["frame_size"] == [48, 64]
    source = open_video(data.frames("tar", "flow"), row.participant_id, row.video_id, "flow")
    first = f"frame_{row.start_frame:010d}.jpg"
    last = f"frame_{row.stop_frame - 1:010d}.jpg"
    assert directory.read_jpegs(segment_id, [0, 1, -2, -1]) == [
        source.read(f"u/{first}"),
        source.read(f"v/{first}"),
        source.read(f"u/{last}"),
        source.read(f"v/{last}"),
    ]
    frames = directory.read_frames(segment_id, [0, 1])
    assert frames[0].shape == (48, 64) and frames[0].dtype == np.uint8


def test_gulpio2_reads_our_directories(data: SyntheticData, tmp_path: Path) -> None:
    gulpio2 = pytest.importorskip("gulpio2")
    ours = GulpDirectory(gulp(data, tmp_path / "g", "rgb"))
    theirs = gulpio2.GulpDirectory(str(tmp_path / "g"))
    assert sorted(theirs.merged_meta_dict) == sorted(ours.segment_ids)
    for segment_id in ours.segment_ids[:4]:
        frames, meta = theirs[segment_id]
        assert meta == ours.meta(segment_id)
        accurate = ours.read_frames(segment_id, range(ours.num_frames(segment_id)))
        assert len(frames) == len(accurate)
        # gulpio2 decodes in libjpeg-turbo's fast mode: close to, not equal to, accurate
        assert (
            max(
                np.abs(a.astype(int) - b.astype(int)).max()
                for a, b in zip(frames, accurate, strict=True)
            )
            <= 8
        )


def test_we_read_directories_written_by_gulpio2(tmp_path: Path) -> None:
    gulpio2 = pytest.importorskip("gulpio2")
    rng = np.random.default_rng(0)
    segments = {
        f"P01_01_{i}": [rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for _ in range(3 + i)]
        for i in range(4)
    }
    directory = gulpio2.GulpDirectory(str(tmp_path))
    for chunk, ids in zip(
        directory.new_chunks(2), (["P01_01_0", "P01_01_1"], ["P01_01_2", "P01_01_3"]), strict=True
    ):
        with chunk.open("wb"):
            for segment_id in ids:
                chunk.append(
                    segment_id, {"narration_id": segment_id, "verb_class": 7}, segments[segment_id]
                )
    theirs = gulpio2.GulpDirectory(str(tmp_path))
    ours = GulpDirectory(tmp_path)
    assert ours.segment_ids == list(segments)
    for segment_id, frames in segments.items():
        assert ours.num_frames(segment_id) == len(frames)
        assert ours.meta(segment_id) == {"narration_id": segment_id, "verb_class": 7}
        chunk = theirs.chunk_objs_lookup[theirs.chunk_lookup[segment_id]]
        stored = Path(chunk.data_file_path).read_bytes()
        raw = [
            stored[loc : loc + length - pad]
            for loc, pad, length in chunk.meta_dict[segment_id]["frame_info"]
        ]
        assert ours.read_jpegs(segment_id, range(len(frames))) == raw
        assert theirs[segment_id][0][0].shape == (24, 32, 3)
        decoded = ours.read_frames(segment_id, [0])[0]
        assert decoded.shape == (24, 32, 3)


def test_reader_errors(data: SyntheticData, tmp_path: Path) -> None:
    directory = GulpDirectory(gulp(data, tmp_path / "g", "rgb"))
    segment_id = directory.segment_ids[0]
    count = directory.num_frames(segment_id)
    with pytest.raises(IndexError, match=f"segment '{segment_id}' \\({count} frames\\)"):
        directory.read_jpegs(segment_id, [0, count])
    with pytest.raises(KeyError, match="P99_99_9"):
        directory.read_jpegs("P99_99_9", [0])
    with pytest.raises(EpicArError, match="not a gulp directory"):
        GulpDirectory(tmp_path)


def test_resize_shorter_side(data: SyntheticData, tmp_path: Path) -> None:
    directory = GulpDirectory(gulp(data, tmp_path / "g", "rgb", frame_size=24))
    segment_id = directory.segment_ids[0]
    assert resized_size(48, 64, 24) == (24, 32)
    assert directory.meta(segment_id)["frame_size"] == [24, 32, 3]
    assert directory.read_frames(segment_id, [0])[0].shape == (24, 32, 3)
    same = GulpDirectory(gulp(data, tmp_path / "same", "rgb", frame_size=48))
    plain = GulpDirectory(gulp(data, tmp_path / "plain", "rgb"))
    assert same.read_jpegs(segment_id, [0, 1]) == plain.read_jpegs(segment_id, [0, 1])


def break_frame(data: SyntheticData, tmp_path: Path, *, delete: bool) -> tuple[Path, str]:
    """A copy of the official-folder RGB frames with one frame of segment 4 missing or broken."""
    frames = tmp_path / "frames"
    shutil.copytree(data.frames("official", "rgb"), frames)
    row = pd.read_csv(data.labels("rgb")).iloc[4]
    victim = (
        frames
        / row.participant_id
        / "rgb_frames"
        / row.video_id
        / (f"frame_{row.start_frame + 1:010d}.jpg")
    )
    if delete:
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:100])
    return frames, str(row.narration_id)


@pytest.mark.parametrize("delete", [True, False])
def test_bad_frames_stop_with_the_segment_video_and_file(
    data: SyntheticData, tmp_path: Path, delete: bool
) -> None:
    frames, segment_id = break_frame(data, tmp_path, delete=delete)
    job = GulpJob(frames, tmp_path / "g", data.labels("rgb"), "rgb", segments_per_chunk=3)
    with pytest.raises(EpicArError) as error:
        run_gulp(job)
    message = str(error.value)
    assert f"segment {segment_id} (video {segment_id.rsplit('_', 1)[0]})" in message
    assert ("missing frame" if delete else "not a complete JPEG") in message
    assert ".jpg" in message
    # chunk 0 is kept for a rerun, but readers refuse the unfinished directory
    assert sorted(p.name for p in (tmp_path / "g").glob("*.gmeta")) == ["meta_0.gmeta"]
    chunks = -(-len(pd.read_csv(data.labels("rgb"))) // 3)
    with pytest.raises(EpicArError, match=rf"an unfinished gulp \(1 of {chunks} chunks written\)"):
        GulpDirectory(tmp_path / "g")


def test_skip_mode_lists_skipped_segments(data: SyntheticData, tmp_path: Path) -> None:
    frames, segment_id = break_frame(data, tmp_path, delete=True)
    labels = pd.read_csv(data.labels("rgb"))
    labels["stop_frame"] = labels["stop_frame"].where(labels.index != 7, labels["start_frame"] - 1)
    labels["video_id"] = labels["video_id"].where(labels.index != 9, "P01_77")
    labels_path = tmp_path / "labels.csv"
    labels.to_csv(labels_path, index=False)
    job = GulpJob(
        frames, tmp_path / "g", labels_path, "rgb", segments_per_chunk=3, skip_bad_segments=True
    )
    summary = run_gulp(job)
    skipped = pd.read_csv(tmp_path / "g" / "skipped.csv")
    assert skipped["narration_id"].tolist() == [
        segment_id,
        labels.narration_id[7],
        labels.narration_id[9],
    ]
    assert "stop_frame" in skipped.reason[1] and "unknown video P01_77" in skipped.reason[2]
    assert len(summary.skipped) == 3
    assert len(GulpDirectory(tmp_path / "g")) == len(labels) - 3


def test_rerun_does_nothing_and_other_inputs_are_refused(
    data: SyntheticData, tmp_path: Path, run_cli: RunCli
) -> None:
    out = gulp(data, tmp_path / "g", "rgb")
    before = directory_bytes(out)
    done = run_cli(
        "gulp", data.frames("tar", "rgb"), out, data.labels("rgb"), "rgb", "--segments-per-chunk", 3
    )
    assert done.returncode == 0 and "already complete; nothing to do" in done.stdout
    assert directory_bytes(out) == before
    done = run_cli("gulp", data.frames("tar", "rgb"), out, data.labels("rgb"), "rgb")
    assert done.returncode == 1
    assert "holds a gulp job with other inputs (differs in segments_per_chunk)" in done.stderr


def test_gulp_check_finds_corruption(data: SyntheticData, tmp_path: Path, run_cli: RunCli) -> None:
    out = gulp(data, tmp_path / "g", "rgb")
    done = run_cli("gulp-check", out)
    assert done.returncode == 0 and "all chunks OK" in done.stdout
    data_file = out / "data_1.gulp"
    content = bytearray(data_file.read_bytes())
    content[200:260] = b"\x00" * 60  # inside the first record's entropy-coded data? header
    data_file.write_bytes(bytes(content))
    (out / "data_9.gulp").write_bytes(b"orphan")
    with (out / "data_2.gulp").open("ab") as file:
        file.write(b"trailing")
    done = run_cli("gulp-check", out)
    assert done.returncode == 1
    assert "data_9.gulp: has no meta file" in done.stdout
    assert "data_2.gulp: records cover" in done.stdout
    assert "data_1.gulp: segment" in done.stdout and "does not decode" in done.stdout


def test_jpeg_helpers_keep_size_channel_order_and_grey() -> None:
    # A smooth image survives quality 95 within a few levels; its three channels differ,
    # so a swapped channel order (BGR) or a greyscale decode would be far off.
    rows, columns = np.mgrid[0:24, 0:40]
    rgb = np.stack([rows * 10, columns * 6, 240 - columns * 6], axis=-1).astype(np.uint8)
    decoded = decode_jpeg(encode_jpeg(rgb, quality=95))
    assert decoded.shape == (24, 40, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - rgb).max() <= 6
    grey = (rows * 8 + columns).astype(np.uint8)
    encoded = encode_jpeg(grey, quality=95)
    assert Image.open(io.BytesIO(encoded)).mode == "L"  # stored as a one-channel JPEG
    decoded_grey = decode_jpeg(encoded)
    assert decoded_grey.shape == (24, 40)  # flow frames come back as [H, W]
    assert np.abs(decoded_grey.astype(int) - grey).max() <= 4
    low = decode_jpeg(encode_jpeg(rgb, quality=20))
    assert np.abs(low.astype(int) - rgb).mean() > np.abs(decoded.astype(int) - rgb).mean()


def test_gulp_help_says_to_convert_flow_frame_numbers(run_cli: RunCli) -> None:
    text = run_cli("gulp", "--help").stdout
    assert "epic-ar convert-flow-idxs" in text
    assert "JPEG quality 90" in text


def test_tar_descriptors_are_closed_after_each_chunk(data: SyntheticData, tmp_path: Path) -> None:
    descriptors = Path("/proc/self/fd")
    before = len(list(descriptors.iterdir()))
    gulp(data, tmp_path / "g", "rgb", "tar", segments_per_chunk=1)
    assert len(list(descriptors.iterdir())) <= before


@pytest.mark.parametrize("modality", ["RGB", "Flow", "depth", ""])
def test_a_gulp_job_takes_rgb_or_flow_exactly(
    data: SyntheticData, tmp_path: Path, modality: str
) -> None:
    out = tmp_path / "out"
    job = GulpJob(data.frames("tar", "rgb"), out, data.labels("rgb"), modality)  # type: ignore[arg-type]
    with pytest.raises(EpicArError) as raised:
        run_gulp(job)
    assert str(raised.value) == f"unknown modality {modality!r}; choose rgb or flow"
    assert not out.exists()


@pytest.mark.parametrize(
    ("command", "argument"), [("gulp", "argument modality"), ("show", "argument --modality")]
)
def test_the_commands_offer_rgb_and_flow_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, argument: str
) -> None:
    out = tmp_path / "out.png"
    args: list[object] = (
        ["gulp", tmp_path, out, tmp_path / "labels.csv", "RGB"]
        if command == "gulp"
        else ["show", tmp_path, out, "--modality", "RGB"]
    )
    status, printed, err = run(capsys, *args)
    assert status == 2 and printed == ""
    message = one_error_line(err, command)
    assert message.startswith(f"{argument}: invalid choice: 'RGB' (choose from ")
    assert message.endswith("rgb', 'flow')") or message.endswith("rgb, flow)")  # Python versions
    assert not out.exists()
