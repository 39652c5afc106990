"""Video files as frames (data/video.py, data/video_writer.py): frames by index against the
whole video decoded in order, lossless round trips, sizes, rates, caches and errors.

The videos are tiny (64x96, at most 150 frames) and written in each module's temporary
folder. Decoding is deterministic, so frames read by index must equal the same frames of a
sequential decode bit for bit, for H.264 (with B-frames, which random access skips when
they are not wanted) as for FFV1.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from epic_ar.data import video, video_table
from epic_ar.data.video import (
    frame_table,
    iterate_frames,
    probe_video,
    read_frames_at,
    resized_width,
    write_video,
)
from epic_ar.data.video_writer import pad_to_even
from epic_ar.errors import EpicArError

HEIGHT, WIDTH = 64, 96
H264_FRAMES, H264_FPS, H264_GOP = 150, 60, 15  # a keyframe every 15 frames (0.25 s)
FFV1_FRAMES, FFV1_FPS, FFV1_GOP = 120, 50, 25


def textured_frames(count: int, height: int = HEIGHT, width: int = WIDTH) -> list[np.ndarray]:
    """[H, W, 3] uint8 frames: a smooth random texture panning right 3 pixels a frame,
    with a bright square crossing it (texture and motion, as footage has; not noise)."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    texture = np.asarray(
        Image.fromarray(coarse).resize((2 * width, height), Image.Resampling.BICUBIC)
    )
    frames = []
    for index in range(count):
        frame = np.roll(texture, 3 * index, axis=1)[:, :width].copy()
        x = (3 * index) % (width - 12)
        frame[20:32, x : x + 12] = (250, 240, 40)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("h264") / "P01_01.MP4"
    gop = H264_GOP / H264_FPS
    frames = textured_frames(H264_FRAMES)
    return write_video(path, frames, H264_FPS, gop_seconds=gop, options={"crf": "16"})


@pytest.fixture(scope="module")
def ffv1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ffv1") / "lossless.mkv"
    gop = FFV1_GOP / FFV1_FPS
    return write_video(path, textured_frames(FFV1_FRAMES), FFV1_FPS, codec="ffv1", gop_seconds=gop)


@pytest.fixture(scope="module")
def decoded_in_order(h264: Path, ffv1: Path) -> dict[tuple[str, int | None], np.ndarray]:
    """Every frame of each video, decoded in order: at full size and 32 high."""
    return {
        (name, height): np.stack(list(iterate_frames(path, height=height)))
        for name, path in (("h264", h264), ("ffv1", ffv1))
        for height in (None, 32)
    }


def test_ffv1_gives_back_exactly_the_pixels_written(ffv1: Path) -> None:
    written = np.stack(textured_frames(FFV1_FRAMES))
    assert np.array_equal(np.stack(list(iterate_frames(ffv1, height=None))), written)
    everything = np.arange(FFV1_FRAMES)[::-1]
    assert np.array_equal(read_frames_at(ffv1, everything, height=None), written[::-1])


def test_the_h264_video_is_what_random_access_must_handle(h264: Path) -> None:
    """Keyframes every H264_GOP frames, and B-frames that no frame refers to (what
    read_frames_at skips): else the tests below would not test that."""
    table = frame_table(h264)
    assert np.flatnonzero(table.keyframe).tolist() == list(range(0, H264_FRAMES, H264_GOP))
    with av.open(str(h264)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        kept = sum(1 for _ in container.decode(stream))
    assert 0 < kept < H264_FRAMES - 20
    # Lossy (4:2:0 chroma of saturated colours: 4.3 levels on average), but the frames are
    # the ones written, in order: each is much closer to its own than to its neighbours.
    written = np.stack(textured_frames(H264_FRAMES)).astype(np.int16)
    decoded = np.stack(list(iterate_frames(h264, height=None))).astype(np.int16)
    error = np.abs(decoded - written).mean()
    assert error < 5
    assert np.abs(decoded[1:] - written[:-1]).mean() > 2 * error
    assert np.abs(decoded[:-1] - written[1:]).mean() > 2 * error


AFTER_KEYFRAMES = [k + 1 for k in range(0, H264_FRAMES, H264_GOP)]
H264_INDICES = st.lists(st.integers(0, H264_FRAMES - 1), min_size=1, max_size=12)
FFV1_INDICES = st.lists(st.integers(0, FFV1_FRAMES - 1), min_size=1, max_size=12)


@settings(max_examples=15, deadline=None)
@given(indices=H264_INDICES, height=st.sampled_from([None, 32]))
@example(indices=AFTER_KEYFRAMES, height=None)
@example(indices=[H264_FRAMES - 1, 0, H264_FRAMES - 1, 14, 15, 16], height=32)
@example(indices=[H264_GOP - 1, H264_GOP - 2, H264_GOP - 1], height=None)  # before a keyframe
def test_h264_frames_by_index_equal_a_sequential_decode(
    h264: Path,
    decoded_in_order: dict[tuple[str, int | None], np.ndarray],
    indices: list[int],
    height: int | None,
) -> None:
    expected = decoded_in_order["h264", height][indices]
    assert np.array_equal(read_frames_at(h264, indices, height=height), expected)


@settings(max_examples=10, deadline=None)
@given(indices=FFV1_INDICES, height=st.sampled_from([None, 32]))
@example(indices=[FFV1_FRAMES - 1, FFV1_GOP, FFV1_GOP + 1, 0, 0], height=None)
def test_ffv1_frames_by_index_equal_a_sequential_decode(
    ffv1: Path,
    decoded_in_order: dict[tuple[str, int | None], np.ndarray],
    indices: list[int],
    height: int | None,
) -> None:
    expected = decoded_in_order["ffv1", height][indices]
    assert np.array_equal(read_frames_at(ffv1, np.asarray(indices), height=height), expected)


def test_frames_skipped_by_mistake_are_decoded_again(
    h264: Path,
    decoded_in_order: dict[tuple[str, int | None], np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A decoder told to skip every frame it may (wanted ones too) still gives every frame:
    the frames missed are read again without skipping."""
    monkeypatch.setattr(video, "_packet_needed", lambda *_: False)
    indices = [*range(20, 40), H264_FRAMES - 1]
    frames = read_frames_at(h264, indices, height=None)
    assert np.array_equal(frames, decoded_in_order["h264", None][indices])


def test_threads_reading_one_video_get_their_own_frames(
    h264: Path, decoded_in_order: dict[tuple[str, int | None], np.ndarray]
) -> None:
    rng = np.random.default_rng(1)
    requests = [rng.integers(0, H264_FRAMES, 5) for _ in range(24)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: read_frames_at(h264, i, height=None), requests))
    for indices, frames in zip(requests, results, strict=True):
        assert np.array_equal(frames, decoded_in_order["h264", None][indices])


def _read_in_child(
    path: Path, indices: list[int], out: multiprocessing.Queue[tuple[int, np.ndarray]]
) -> None:
    inherited = len(video._open_videos._open)  # decoders kept open, as the fork left them
    out.put((inherited, read_frames_at(path, indices, height=None)))


def test_a_forked_process_reads_with_its_own_decoder(
    h264: Path, decoded_in_order: dict[tuple[str, int | None], np.ndarray]
) -> None:
    """The parent has an open decoder (and its file offset) when it forks; the child opens
    its own, and the parent's keeps working after the child has read and exited."""
    expected = decoded_in_order["h264", None]
    assert np.array_equal(read_frames_at(h264, [70, 3], height=None), expected[[70, 3]])
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[tuple[int, np.ndarray]] = context.Queue()
    child = context.Process(target=_read_in_child, args=(h264, [149, 1, 88], queue))
    child.start()
    inherited, from_child = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert inherited == 0
    assert np.array_equal(from_child, expected[[149, 1, 88]])
    assert np.array_equal(read_frames_at(h264, [71, 140], height=None), expected[[71, 140]])


def test_a_video_rewritten_under_the_same_name_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "same.mkv"
    first = textured_frames(30)
    write_video(path, first, 50, codec="ffv1")
    assert np.array_equal(read_frames_at(path, [29, 2], height=None), np.stack(first)[[29, 2]])
    second = [255 - frame for frame in textured_frames(40)]
    write_video(path, second, 25, codec="ffv1", force=True)
    assert (probe_video(path).frame_count, probe_video(path).fps) == (40, 25.0)
    assert np.array_equal(read_frames_at(path, [39, 2], height=None), np.stack(second)[[39, 2]])
    frame_table.cache_clear()  # forgets tables and closes decoders; reading still works
    assert np.array_equal(read_frames_at(path, [5], height=None), second[5][None])


# --- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "target", "expected"),
    [
        (1920, 1080, 256, 456),  # 1920 x 256 / 1080 = 455.1: 2 x round(227.6) = 456
        (1280, 720, 256, 456),  # 455.1 again
        (1920, 1440, 256, 342),  # 341.3: 2 x round(170.7) = 342
        (456, 256, 256, 456),  # already that size
        (96, 64, 32, 48),  # exact
        (100, 60, 30, 50),  # exact, but odd halves: 2 x round(25) = 50
        (642, 512, 256, 322),  # 160.5 half widths: FFmpeg rounds halves up, 2 x 161
    ],
)
def test_resized_width_keeps_the_aspect_ratio_rounded_to_even(
    width: int, height: int, target: int, expected: int
) -> None:
    assert resized_width(width, height, target) == expected


@pytest.mark.parametrize(("height", "width"), [(32, 48), (48, 72), (100, 150), (64, 96)])
def test_frames_come_resized_to_the_height_asked_for(
    h264: Path, decoded_in_order: dict[tuple[str, int | None], np.ndarray], height: int, width: int
) -> None:
    """Width from the aspect ratio; the pixels are a resize of the frame asked for: close
    to PIL's bicubic resize of the full frame (swscale resizes the 4:2:0 planes before
    converting to RGB: 2.8-3.4 levels apart on average), far from the next frame's (13-15)."""
    frames = read_frames_at(h264, [0, 77], height=height)
    assert frames.shape == (2, height, width, 3)
    assert next(iterate_frames(h264, height=height)).shape == (height, width, 3)

    def pil_resized(index: int) -> np.ndarray:
        full = Image.fromarray(decoded_in_order["h264", None][index])
        return np.asarray(full.resize((width, height), Image.Resampling.BICUBIC), np.int16)

    for frame, index in zip(frames.astype(np.int16), [0, 77], strict=True):
        assert np.abs(frame - pil_resized(index)).mean() < 4
        assert np.abs(frame - pil_resized(index + 1)).mean() > 10


@pytest.mark.parametrize("fps", [50.0, 60.0, 60000 / 1001])
def test_probe_video_gives_rate_count_and_size(tmp_path: Path, fps: float) -> None:
    path = write_video(tmp_path / "rate.mp4", textured_frames(37, 48, 80), fps, gop_seconds=0.2)
    info = probe_video(path)
    assert (info.frame_count, info.width, info.height, info.path) == (37, 80, 48, path)
    assert Fraction(info.fps).limit_denominator(1001) == Fraction(fps).limit_denominator(1001)
    assert info.fps == pytest.approx(fps, rel=1e-12)


# --- errors -----------------------------------------------------------------------------------


def one_line(error: pytest.ExceptionInfo[EpicArError], *parts: str) -> str:
    message = str(error.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message
    return message


def test_a_missing_video_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "P01" / "videos" / "P01_99.MP4"
    for read in (probe_video, lambda p: read_frames_at(p, [0]), lambda p: next(iterate_frames(p))):
        with pytest.raises(EpicArError) as error:
            read(missing)
        one_line(error, str(missing), "no such video file")
    with pytest.raises(EpicArError) as error:
        read_frames_at(tmp_path, [0])  # a folder
    one_line(error, str(tmp_path), "no such video file")


def test_a_file_that_is_not_a_video_is_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("take plate\nput plate\n")
    for read in (probe_video, lambda p: read_frames_at(p, [0]), lambda p: next(iterate_frames(p))):
        with pytest.raises(EpicArError) as error:
            read(text)
        one_line(error, str(text), "not a readable video")


@pytest.mark.parametrize(
    ("indices", "bad"), [([0, 150], "150"), ([-1], "-1"), ([3, 999, 5], "999")]
)
def test_frames_outside_the_video_are_refused(h264: Path, indices: list[int], bad: str) -> None:
    with pytest.raises(EpicArError) as error:
        read_frames_at(h264, indices)
    one_line(error, str(h264), f"frame {bad} asked for", f"has {H264_FRAMES} frames")
    with pytest.raises(EpicArError) as error:
        read_frames_at(h264, [])
    one_line(error, str(h264), "no frames asked for")


def test_write_video_leaves_nothing_when_the_frames_fail(tmp_path: Path) -> None:
    def failing() -> Iterator[np.ndarray]:
        yield from textured_frames(10)
        raise RuntimeError("renderer crashed")

    target = tmp_path / "out" / "broken.mp4"
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_video(target, failing(), 50)
    assert not target.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("name", "frames", "codec", "message"),
    [
        ("a.webm", textured_frames(2), "libx264", "unknown video file suffix"),
        ("a.mp4", textured_frames(2), "mpeg9", "unknown codec 'mpeg9'"),
        ("a.mp4", [], "libx264", "no frames to write"),
        ("a.mp4", [np.zeros((8, 8), np.uint8)], "libx264", "must be [H, W, 3] uint8"),
        ("a.mkv", [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)], "ffv1",
         "frames of (8, 10, 3) uint8 among frames of (8, 8, 3) uint8"),
    ],
)  # fmt: skip
def test_write_video_refuses_what_it_cannot_write(
    tmp_path: Path, name: str, frames: list[np.ndarray], codec: str, message: str
) -> None:
    with pytest.raises(EpicArError) as error:
        write_video(tmp_path / name, frames, 50, codec=codec)
    one_line(error, str(tmp_path / name), message)
    assert list(tmp_path.iterdir()) == []


def open_files(paths: list[Path]) -> int:
    """How many of this process's file descriptors are open on `paths` (Linux)."""
    targets = {str(path.resolve()) for path in paths}
    links = [str(fd.readlink()) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink()]
    return sum(1 for link in links if link in targets)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_only_the_last_videos_read_stay_open(tmp_path: Path) -> None:
    paths = [
        write_video(tmp_path / f"v{i}.mkv", textured_frames(5 + i), 50, codec="ffv1")
        for i in range(video.VIDEOS_KEPT + 2)
    ]
    for path in paths:
        assert read_frames_at(path, [4], height=None).shape == (1, HEIGHT, WIDTH, 3)
    assert open_files(paths[-video.VIDEOS_KEPT :]) == video.VIDEOS_KEPT
    assert open_files(paths[: -video.VIDEOS_KEPT]) == 0
    frame_table.cache_clear()
    assert open_files(paths) == 0


# --- frame tables kept on disk ----------------------------------------------------------------


def test_a_frame_table_is_read_once_then_from_its_index_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "P01_01.MP4"
    write_video(path, textured_frames(40), 60, gop_seconds=0.25)
    demuxed = video_table.read_frame_table(path)
    index = tmp_path / ("P01_01.MP4" + video_table.INDEX_SUFFIX)
    assert index.is_file()

    def no_demuxing(path: Path) -> None:
        raise AssertionError(f"{path} demuxed again")

    monkeypatch.setattr(video_table, "demux_frame_table", no_demuxing)
    frame_table.cache_clear()  # as a new process (a DataLoader worker) starts
    stored = frame_table(path)
    assert stored.info == demuxed.info == video_table.VideoInfo(path, 60.0, 40, WIDTH, HEIGHT)
    assert (stored.pts.tolist(), stored.keyframe.tolist()) == (
        demuxed.pts.tolist(),
        demuxed.keyframe.tolist(),
    )
    assert stored.keyframe.tolist() == [i % 15 == 0 for i in range(40)]  # a GoP of 15
    assert stored.time_base == demuxed.time_base
    assert np.array_equal(read_frames_at(path, [39, 0], height=None), iterated(path)[[39, 0]])


def iterated(path: Path) -> np.ndarray:
    return np.stack(list(iterate_frames(path, height=None)))


def test_an_index_of_an_older_version_of_the_video_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "clip.mkv"
    write_video(path, textured_frames(30), 50, codec="ffv1")
    assert video_table.read_frame_table(path).info.frame_count == 30
    write_video(path, textured_frames(45), 25, codec="ffv1", force=True)
    again = video_table.read_frame_table(path)
    assert (again.info.frame_count, again.info.fps) == (45, 25.0)


def test_an_index_goes_to_the_cache_folder_when_it_cannot_go_beside_the_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_video(tmp_path / "clip.mkv", textured_frames(20), 50, codec="ffv1")
    # A folder where the index file would go: it cannot be written there (as in a read-only
    # folder, which root could write into anyway).
    (tmp_path / ("clip.mkv" + video_table.INDEX_SUFFIX)).mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert video_table.read_frame_table(path).info.frame_count == 20
    cached = list((tmp_path / "cache" / "epic-ar" / "video-index").iterdir())
    assert [p.name.endswith(video_table.INDEX_SUFFIX) for p in cached] == [True]
    assert video_table.read_frame_table(path).info.frame_count == 20  # read from there


def test_probe_video_can_keep_its_index_away_from_the_video(tmp_path: Path) -> None:
    path = write_video(tmp_path / "mine.mp4", textured_frames(10), 30)
    info = probe_video(path, tmp_path / "elsewhere")
    assert info.frame_count == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "mine.mp4"]


def test_wanted_frames_are_the_same_frames_and_decoding_stops_after_the_last(
    h264: Path, decoded_in_order: dict[tuple[str, int | None], np.ndarray]
) -> None:
    wanted = {3, 17, 18, 90}
    got = list(video.iterate_wanted_frames(h264, wanted, height=None))
    assert [index for index, _ in got] == [3, 17, 18, 90]
    for index, frame in got:
        assert np.array_equal(frame, decoded_in_order[("h264", None)][index])
    assert list(video.iterate_wanted_frames(h264, set(), height=None)) == []


@pytest.mark.parametrize("shape", [(5, 63, 95, 3), (63, 95, 3), (64, 95, 3), (63, 96, 3)])
def test_pad_to_even_adds_one_black_row_or_column_where_a_side_is_odd(
    shape: tuple[int, ...],
) -> None:
    pixels = np.random.default_rng(1).integers(1, 256, shape, dtype=np.uint8)
    padded = pad_to_even(pixels)
    height, width = shape[-3:-1]
    assert padded.shape == (*shape[:-3], height + height % 2, width + width % 2, 3)
    assert np.array_equal(padded[..., :height, :width, :], pixels)
    assert padded.sum() == pixels.astype(np.int64).sum()  # what was added is black
    assert pad_to_even(padded) is padded


@pytest.mark.parametrize(("rotation", "quarter_turns"), [(90, 1), (-90, 3), (180, 2)])
def test_frames_are_turned_as_their_display_rotation_says(
    tmp_path: Path, rotation: int, quarter_turns: int
) -> None:
    # A phone video: stored landscape, shown turned. FFmpeg's player turns a frame whose
    # display matrix says 90 degrees a quarter turn counterclockwise (checked against the
    # ffmpeg command line when this test was written).
    stored = np.zeros((48, 64, 3), np.uint8)
    stored[:16, :16] = 255  # a white square in the top-left corner as stored
    path = tmp_path / "phone.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=Fraction(25))
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.set_display_rotation(rotation)
    for _ in range(3):
        for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    shown = np.rot90(stored, quarter_turns)
    for frame in (
        next(iterate_frames(path, height=None)),
        read_frames_at(path, [2], height=None)[0],
    ):
        assert frame.shape == shown.shape
        assert np.abs(frame.astype(int) - shown.astype(int)).mean() < 3
    tall = read_frames_at(path, [0], height=256)[0]
    width = resized_width(shown.shape[1], shown.shape[0], 256)
    assert tall.shape == (256, width, 3)


def test_a_video_cut_short_is_warned_about(
    tmp_path: Path, h264: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whole = tmp_path / "whole.mp4"
    container = av.open(str(whole), "w", options={"movflags": "faststart"})  # index first
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    for frame in textured_frames(60):
        container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    container.mux(stream.encode())
    container.close()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    for path in (whole, h264):
        video_table.demux_frame_table(path)
    assert caplog.messages == []
    table, _ = video_table.demux_frame_table(cut)
    readable = table.info.frame_count
    assert 0 < readable < 60
    assert caplog.messages == [
        f"{cut}: the file lists 60 frames but only {readable} can be read (cut short?); only "
        "those are used"
    ]
