"""Whole videos as frame sources for features: released frames in every layout gulp reads
(read back against the files themselves), video files (against `read_frames_at`), rates and
counts, stacking for the test views, the videos of a label file, and every error line."""

from __future__ import annotations

import io
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epic_ar.cli.main import error_message
from epic_ar.data.video import read_frames_at
from epic_ar.errors import EpicArError
from epic_ar.features.sources import ReleasedFrames, VideoFileFrames, stack_frames
from epic_ar.features.videos import open_videos, video_ids_of_labels
from epic_ar.synthetic.dataset import SyntheticConfig, Video, generate_dataset
from helpers.gulp_data import SyntheticData

CONFIG = SyntheticConfig(
    participants=2,
    videos_per_participant=2,
    segments_per_video=6,
    frame_width=64,
    frame_height=48,
    min_frames=4,
    max_frames=9,
    layouts=("folders", "official", "tar", "videos"),
    seed=3,
)
FRAME_LAYOUTS = ("folders", "official", "tar")
RATES = {"P01_01": 60, "P01_102": 50}  # released RGB frames per second
FLOW_STRIDES = {"P01_01": 2, "P01_102": 1}
FLAGS = {"frames_dir": "--frames-dir", "videos_dir": "--videos-dir"}


class Data:
    def __init__(self, root: Path, videos: list[Video]):
        self.synthetic = SyntheticData(root)
        self.root = root
        self.videos = {video.video_id: video for video in videos}

    def frames(self, layout: str, modality: str) -> Path:
        return self.synthetic.frames(layout, modality)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    root = tmp_path_factory.mktemp("feature_sources")
    return Data(root, generate_dataset(root, CONFIG))


def file_member(data: Data, layout: str, modality: str, video: str, name: str) -> bytes:
    """Member `name` (`frame_0000000001.jpg`, `u/...`) of a video's frames, read directly."""
    participant = video.split("_", maxsplit=1)[0]
    folder = "rgb_frames" if modality == "rgb" else "flow_frames"
    if layout == "folders":
        return (data.frames("folders", modality) / participant / video / name).read_bytes()
    if layout == "official":
        return (
            data.frames("official", modality) / participant / folder / video / name
        ).read_bytes()
    with tarfile.open(data.frames("tar", modality) / participant / folder / f"{video}.tar") as tar:
        member = tar.extractfile(f"./{name}")
        assert member is not None
        return member.read()


def error_of(call: object, *args: object, **kwargs: object) -> str:
    """The message of the EpicArError `call(*args, **kwargs)` raises, checked to be one line."""
    with pytest.raises(EpicArError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- released frames ------------------------------------------------------------------------


@pytest.mark.parametrize("layout", FRAME_LAYOUTS)
def test_released_rgb_frames_are_the_jpeg_files(data: Data, layout: str) -> None:
    sources = open_videos(["P01_01", "P01_102"], "rgb", frames_dir=data.frames(layout, "rgb"))
    assert [s.video_id for s in sources] == ["P01_01", "P01_102"]
    for source in sources:
        video = data.videos[source.video_id]
        assert isinstance(source, ReleasedFrames)
        assert (source.modality, source.fps) == ("rgb", RATES[source.video_id])
        assert source.frame_count == video.num_frames
        items = list(source.iterate())
        assert [i for i, _ in items] == list(range(video.num_frames))
        for i, item in items:
            name = f"frame_{i + 1:010d}.jpg"
            assert item == file_member(data, layout, "rgb", source.video_id, name)


@pytest.mark.parametrize("layout", FRAME_LAYOUTS)
def test_released_flow_frames_are_u_v_pairs_at_the_flow_rate(data: Data, layout: str) -> None:
    sources = open_videos(["P01_01", "P01_102"], "flow", frames_dir=data.frames(layout, "flow"))
    for source in sources:
        stride = FLOW_STRIDES[source.video_id]
        assert source.fps == RATES[source.video_id] / stride  # 30 for 2018 videos, 50 for 2020
        assert source.frame_count == (data.videos[source.video_id].num_frames - 1) // stride
        wanted = {0, 3, source.frame_count - 1}
        items = list(source.iterate(wanted))
        assert [i for i, _ in items] == sorted(wanted)
        for i, item in items:
            name = f"frame_{i + 1:010d}.jpg"
            assert item == (
                file_member(data, layout, "flow", source.video_id, f"u/{name}"),
                file_member(data, layout, "flow", source.video_id, f"v/{name}"),
            )


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_tar_and_folder_layouts_give_the_same_items(data: Data, modality: str) -> None:
    ids = ["P02_102", "P02_01"]
    from_tar = open_videos(ids, modality, frames_dir=data.frames("tar", modality))  # type: ignore[arg-type]
    from_folders = open_videos(ids, modality, frames_dir=data.frames("folders", modality))  # type: ignore[arg-type]
    for tar, folder in zip(from_tar, from_folders, strict=True):
        assert tar.path.suffix == ".tar" and folder.path.is_dir()
        assert (tar.fps, tar.frame_count) == (folder.fps, folder.frame_count)
        assert list(tar.iterate()) == list(folder.iterate())


def test_only_the_wanted_frames_in_order_and_sources_pickle(data: Data) -> None:
    (source,) = open_videos(["P02_01"], "rgb", frames_dir=data.frames("tar", "rgb"))
    everything = dict(source.iterate())
    picked = list(source.iterate([9, 2, 5, 2]))  # any order, repeats: each once, in order
    assert picked == [(i, everything[i]) for i in (2, 5, 9)]
    assert list(source.iterate(set())) == []
    copy = pickle.loads(pickle.dumps(source))  # spawned DataLoader workers
    assert copy == source and dict(copy.iterate()) == everything
    with pytest.raises(EpicArError, match=rf"frame {source.frame_count} asked for, but the"):
        list(source.iterate([0, source.frame_count]))


def test_duplicate_ids_are_kept_once(data: Data) -> None:
    sources = open_videos(
        ["P01_01", "P02_01", "P01_01"], "rgb", frames_dir=data.frames("tar", "rgb")
    )
    assert [s.video_id for s in sources] == ["P01_01", "P02_01"]


# --- video files ----------------------------------------------------------------------------


def test_video_file_frames_are_the_decoded_frames(data: Data) -> None:
    sources = open_videos(["P01_01", "P01_102"], "rgb", videos_dir=data.root / "videos")
    for source in sources:
        video = data.videos[source.video_id]
        assert isinstance(source, VideoFileFrames)
        assert source.path == data.root / "videos" / "P01" / "videos" / f"{video.video_id}.MP4"
        assert (source.modality, source.fps) == ("rgb", RATES[source.video_id])
        assert source.frame_count == video.num_frames
        wanted = [1, 4, source.frame_count - 1]
        items = list(source.iterate(set(wanted)))
        assert [i for i, _ in items] == wanted
        for i, pixels in items:
            assert isinstance(pixels, np.ndarray) and pixels.shape == (256, 342, 3)
            np.testing.assert_array_equal(pixels, read_frames_at(source.path, [i])[0])
        assert [i for i, _ in source.iterate()] == list(range(video.num_frames))
    assert pickle.loads(pickle.dumps(sources[0])) == sources[0]


# --- stacking and label files ---------------------------------------------------------------


def test_stack_frames_gives_what_segment_sources_give() -> None:
    pixels = [np.full((4, 6, 3), k, dtype=np.uint8) for k in range(3)]
    stacked = stack_frames(pixels)
    assert isinstance(stacked, np.ndarray) and stacked.shape == (3, 4, 6, 3)
    assert stacked[:, 0, 0, 0].tolist() == [0, 1, 2]
    assert stack_frames([b"a", b"b"]) == [b"a", b"b"]
    assert stack_frames([(b"u0", b"v0"), (b"u1", b"v1")]) == [b"u0", b"v0", b"u1", b"v1"]
    with pytest.raises(ValueError, match="different kinds"):
        stack_frames([b"a", (b"u", b"v")])
    with pytest.raises(ValueError, match="no frames"):
        stack_frames([])


def test_video_ids_of_a_label_file_in_order_of_first_appearance(data: Data, tmp_path: Path) -> None:
    labels = data.synthetic.labels("rgb", "validation")
    table = pd.read_csv(labels)
    expected: list[str] = []
    for video in table["video_id"]:
        if video not in expected:
            expected.append(video)
    assert video_ids_of_labels(labels) == expected
    shuffled = table.iloc[::-1].set_index("narration_id")
    shuffled.to_pickle(tmp_path / "reversed.pkl")
    assert video_ids_of_labels(tmp_path / "reversed.pkl") == list(
        dict.fromkeys(shuffled["video_id"])
    )
    table.iloc[:0].to_csv(tmp_path / "empty.csv", index=False)
    assert error_of(video_ids_of_labels, tmp_path / "empty.csv") == (
        f"{tmp_path / 'empty.csv'}: no segments, so no videos"
    )


# --- errors ---------------------------------------------------------------------------------


def test_exactly_one_of_frames_and_videos(data: Data) -> None:
    for kwargs in ({}, {"frames_dir": data.root, "videos_dir": data.root}):
        with pytest.raises(EpicArError) as caught:
            open_videos(["P01_01"], "rgb", **kwargs)
        assert str(caught.value) == (
            "read the videos either from frames (frames_dir) or from video files (videos_dir): "
            "give exactly one"
        )
        assert error_message(caught.value, FLAGS) == (
            "read the videos either from frames (--frames-dir DIR) or from video files "
            "(--videos-dir DIR): give exactly one"
        )
    assert error_of(open_videos, [], "rgb", frames_dir=data.root) == "no videos to read"


def test_unknown_videos(data: Data) -> None:
    root = data.frames("official", "rgb")
    assert error_of(open_videos, ["P01_01", "P09_03"], "rgb", frames_dir=root) == (
        f"unknown video P09_03: no RGB frames under {root} (looked for P09/P09_03, "
        "P09/rgb_frames/P09_03, P09/rgb_frames/P09_03.tar)"
    )
    videos = data.root / "videos"
    assert error_of(open_videos, ["P09_03"], "rgb", videos_dir=videos) == (
        f"unknown video P09_03: no video under {videos} (looked for "
        f"{videos / 'P09' / 'videos' / 'P09_03.MP4'})"
    )
    missing = data.root / "nowhere"
    assert error_of(open_videos, ["P01_01"], "rgb", frames_dir=missing) == (
        f"{missing}: no such directory (frames)"
    )
    assert error_of(open_videos, ["P01_01"], "rgb", videos_dir=missing) == (
        f"{missing}: no such directory (videos)"
    )


@pytest.mark.parametrize("video_id", ["kitchen", "P01_1", "P01/../P01_01"])
def test_videos_not_named_like_epic_are_refused(data: Data, video_id: str) -> None:
    message = error_of(open_videos, [video_id], "rgb", frames_dir=data.frames("tar", "rgb"))
    assert message.startswith(f"video {video_id!r} is not named like an EPIC-KITCHENS video")
    assert "rate of its released frames is unknown" in message


def test_a_video_id_naming_no_participant_is_refused_for_videos(data: Data) -> None:
    message = error_of(open_videos, ["kitchen"], "rgb", videos_dir=data.root / "videos")
    assert message == (
        "video 'kitchen' is not named like an EPIC-KITCHENS video (P01_01: participant P01), "
        "so where it lies is unknown"
    )


def test_flow_of_videos_is_refused(data: Data) -> None:
    videos = data.root / "videos"
    with pytest.raises(EpicArError) as caught:
        open_videos(["P01_01"], "flow", videos_dir=videos)
    assert error_message(caught.value, FLAGS) == (
        f"{videos}: videos have no optical flow; read flow frames from frame archives or "
        "folders (--frames-dir DIR)"
    )


def test_flow_of_an_rgb_only_layout_is_refused(data: Data, tmp_path: Path) -> None:
    rgb_folders = data.frames("folders", "rgb")
    assert error_of(open_videos, ["P01_01"], "flow", frames_dir=rgb_folders) == (
        f"{rgb_folders / 'P01' / 'P01_01'}: holds RGB frames, not flow"
    )
    flow_folders = data.frames("folders", "flow")
    assert error_of(open_videos, ["P01_01"], "rgb", frames_dir=flow_folders) == (
        f"{flow_folders / 'P01' / 'P01_01'}: holds flow frames, not RGB"
    )
    root = tmp_path / "frames"
    shutil.copytree(data.frames("tar", "rgb") / "P01" / "rgb_frames", root / "P01" / "rgb_frames")
    assert error_of(open_videos, ["P01_01"], "flow", frames_dir=root) == (
        f"unknown video P01_01: no flow frames under {root} (looked for P01/P01_01, "
        "P01/flow_frames/P01_01, P01/flow_frames/P01_01.tar); only RGB frames "
        "(P01/rgb_frames/P01_01.tar)"
    )
    # an RGB archive where the flow archive should be
    (root / "P01" / "flow_frames").mkdir()
    shutil.copy(root / "P01" / "rgb_frames" / "P01_01.tar", root / "P01" / "flow_frames")
    assert error_of(open_videos, ["P01_01"], "flow", frames_dir=root) == (
        f"{root / 'P01' / 'flow_frames' / 'P01_01.tar'}: holds RGB frames, not flow"
    )


def write_tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def test_missing_frames_are_named(data: Data, tmp_path: Path) -> None:
    root = tmp_path / "frames"
    folder = root / "P01" / "rgb_frames" / "P01_01"
    shutil.copytree(data.frames("official", "rgb") / "P01" / "rgb_frames" / "P01_01", folder)
    (folder / "frame_0000000003.jpg").unlink()
    assert error_of(open_videos, ["P01_01"], "rgb", frames_dir=root) == (
        f"missing frame {folder / 'frame_0000000003.jpg'}"
    )
    for name in [p.name for p in folder.iterdir()]:
        (folder / name).unlink()
    assert error_of(open_videos, ["P01_01"], "rgb", frames_dir=root) == (
        f"{folder}: no RGB frames (no frame_*.jpg)"
    )
    folder.rmdir()
    archive = root / "P01" / "rgb_frames" / "P01_01.tar"
    write_tar(archive, {"frame_0000000001.jpg": b"1", "frame_0000000003.jpg": b"3"})
    assert error_of(open_videos, ["P01_01"], "rgb", frames_dir=root) == (
        f"missing frame {archive}:frame_0000000002.jpg"
    )
    flow = root / "P01" / "flow_frames" / "P01_01.tar"
    write_tar(flow, {"u/frame_0000000001.jpg": b"u", "u/frame_0000000002.jpg": b"u",
                     "v/frame_0000000001.jpg": b"v"})  # fmt: skip
    assert error_of(open_videos, ["P01_01"], "flow", frames_dir=root) == (
        f"missing frame {flow}:v/frame_0000000002.jpg"
    )
    archive.write_bytes(b"not a tar archive" * 100)
    assert error_of(open_videos, ["P01_01"], "rgb", frames_dir=root).startswith(
        f"{archive}: unreadable tar archive ("
    )


def test_a_frame_removed_after_opening_is_named_when_read(data: Data, tmp_path: Path) -> None:
    folder = tmp_path / "P02" / "P02_01"
    shutil.copytree(data.frames("folders", "rgb") / "P02" / "P02_01", folder)
    (source,) = open_videos(["P02_01"], "rgb", frames_dir=tmp_path)
    (folder / "frame_0000000002.jpg").unlink()
    with pytest.raises(EpicArError, match=r"^missing frame .*P02_01/frame_0000000002\.jpg$"):
        list(source.iterate())


def test_unreadable_videos_are_named(data: Data, tmp_path: Path) -> None:
    bad = tmp_path / "P01" / "videos" / "P01_01.MP4"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a video" * 100)
    assert error_of(open_videos, ["P01_01"], "rgb", videos_dir=tmp_path).startswith(
        f"{bad}: not a readable video ("
    )
