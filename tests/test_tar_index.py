"""`IndexedTar.read` and the member-name rule: frames read from an indexed archive against the
members as Python's `tarfile` reads them, in number-major order, and the one error line for
a missing frame or an archive truncated after it was indexed (also through the segment and
feature sources that read with it)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epic_ar.data.segment_sources import ArchiveSegments
from epic_ar.data.tar_index import IndexedTar, build_tar_index, tar_index
from epic_ar.errors import EpicArError
from epic_ar.features.sources import ReleasedFrames
from epic_ar.gulp.sources import member_name

FRAMES = 5  # frame numbers 1..FRAMES in the archives built here


def payload(name: str) -> bytes:
    """Distinct bytes of a different length per member (a shifted range would not match)."""
    return f"<{name}>".encode() * (3 + len(name) % 7) + os.urandom(1 + sum(map(ord, name)) % 29)


def write_archive(path: Path, names: list[str], prefix: str = "./") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name in names:
            content = payload(name)
            info = tarfile.TarInfo(prefix + name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def tarfile_members(path: Path) -> dict[str, bytes]:
    """Every file member's bytes as `tarfile` extracts them, keyed without a leading "./"."""
    members = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member)
            assert extracted is not None
            members[member.name.removeprefix("./")] = extracted.read()
    return members


RGB_NAMES = [f"frame_{n:010d}.jpg" for n in range(1, FRAMES + 1)]
FLOW_NAMES = [f"{axis}/frame_{n:010d}.jpg" for n in range(1, FRAMES + 1) for axis in "uv"]


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tar_index")
    write_archive(root / "rgb.tar", RGB_NAMES)
    write_archive(root / "flow.tar", FLOW_NAMES, prefix="")  # members without "./"
    return {"rgb": root / "rgb.tar", "flow": root / "flow.tar"}


def error_of(call: object, *args: object) -> str:
    with pytest.raises(EpicArError) as caught:
        call(*args)  # type: ignore[operator]
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_member_name_spells_the_official_names() -> None:
    assert member_name("", 1) == "frame_0000000001.jpg"
    assert member_name("u", 12) == "u/frame_0000000012.jpg"
    assert member_name("v", 1234567890) == "v/frame_1234567890.jpg"


def test_rgb_frames_are_the_tarfile_members(archives: dict[str, Path]) -> None:
    path = archives["rgb"]
    expected = tarfile_members(path)
    archive = IndexedTar(path, build_tar_index(path))
    got = archive.read(np.array([3, 1, 5, 1]), ("",))
    assert got == [expected[RGB_NAMES[n - 1]] for n in (3, 1, 5, 1)]
    assert archive.read(np.array([], dtype=np.int64), ("",)) == []


def test_flow_frames_are_number_major(archives: dict[str, Path]) -> None:
    path = archives["flow"]
    expected = tarfile_members(path)
    archive = IndexedTar(path, build_tar_index(path))
    assert archive.read(np.array([2, 1]), ("u", "v")) == [
        expected["u/frame_0000000002.jpg"],
        expected["v/frame_0000000002.jpg"],
        expected["u/frame_0000000001.jpg"],
        expected["v/frame_0000000001.jpg"],
    ]
    assert archive.read(np.array([4]), ("v",)) == [expected["v/frame_0000000004.jpg"]]


@settings(max_examples=40, deadline=None)
@given(numbers=st.lists(st.integers(1, FRAMES), max_size=12), flip=st.booleans())
def test_any_selection_reads_member_by_member(
    archives: dict[str, Path], numbers: list[int], flip: bool
) -> None:
    path = archives["flow"]
    expected = tarfile_members(path)
    axes = ("v", "u") if flip else ("u", "v")
    got = IndexedTar(path, tar_index(path, path.parent / "cache")).read(np.array(numbers), axes)
    assert got == [expected[f"{axis}/frame_{n:010d}.jpg"] for n in numbers for axis in axes]


def test_a_missing_frame_is_named(archives: dict[str, Path], tmp_path: Path) -> None:
    path = archives["rgb"]
    archive = IndexedTar(path, build_tar_index(path))
    for bad in (0, FRAMES + 1):
        assert error_of(archive.read, np.array([1, bad]), ("",)) == (
            f"missing frame {path}:frame_{bad:010d}.jpg"
        )
    gappy = tmp_path / "gappy.tar"
    write_archive(gappy, [name for name in FLOW_NAMES if name != "v/frame_0000000003.jpg"])
    flow = IndexedTar(gappy, build_tar_index(gappy))
    assert error_of(flow.read, np.array([2, 3]), ("u", "v")) == (
        f"missing frame {gappy}:v/frame_0000000003.jpg"
    )
    assert error_of(flow.read, np.array([1]), ("",)) == f"{gappy}: holds flow frames, not RGB"


def test_an_archive_gone_since_indexing_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "gone.tar"
    write_archive(path, RGB_NAMES)
    archive = IndexedTar(path, build_tar_index(path))
    path.unlink()
    message = error_of(archive.read, np.array([1]), ("",))
    assert message.startswith(f"{path}: cannot read (") and "\n" not in message


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_a_truncated_archive_is_named_at_the_member(
    archives: dict[str, Path], tmp_path: Path, modality: str
) -> None:
    path = tmp_path / "cut.tar"
    path.write_bytes(archives[modality].read_bytes())
    table = build_tar_index(path)
    axes = ("u", "v") if modality == "flow" else ("",)
    offset, size = table[len(axes) - 1, FRAMES]  # the last member in the file
    expected = tarfile_members(path)
    os.truncate(path, int(offset + size // 2))  # the archive changed after indexing
    archive = IndexedTar(path, table)
    last = member_name(axes[-1], FRAMES)
    assert error_of(archive.read, np.array([1, FRAMES]), axes) == (
        f"{path}: truncated at member {last}"
    )
    # the members before the cut are whole
    assert archive.read(np.array([1]), axes) == [expected[member_name(a, 1)] for a in axes]


def video_tar(root: Path, modality: str, names: list[str]) -> Path:
    folder = "flow_frames" if modality == "flow" else "rgb_frames"
    path = root / "P01" / folder / "P01_01.tar"
    write_archive(path, names)
    return path


def test_segment_archives_read_with_the_index_and_name_truncation(tmp_path: Path) -> None:
    path = video_tar(tmp_path, "flow", FLOW_NAMES)
    expected = tarfile_members(path)
    labels = pd.DataFrame(
        {"participant_id": ["P01"], "video_id": ["P01_01"], "start_frame": [2], "stop_frame": [5]},
        index=pd.Index(["P01_01_0"], name="narration_id"),
    )
    segments = ArchiveSegments(tmp_path, "flow", labels, label_frame_numbers="flow")
    assert segments.read_frames(0, np.array([0, 2])) == [
        expected["u/frame_0000000002.jpg"],
        expected["v/frame_0000000002.jpg"],
        expected["u/frame_0000000004.jpg"],
        expected["v/frame_0000000004.jpg"],
    ]
    offset, _ = build_tar_index(path)[0, 2]
    os.truncate(path, int(offset) + 1)  # inside u/frame 2: it and every later member read short
    with pytest.raises(EpicArError) as caught:
        segments.read_frames(0, np.array([0]))
    assert str(caught.value) == f"{path}: truncated at member u/frame_0000000002.jpg"


def test_released_frames_read_with_the_index_and_name_truncation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = video_tar(tmp_path, "rgb", RGB_NAMES)
    expected = tarfile_members(path)
    source = ReleasedFrames.from_location("P01_01", path, "rgb", index_cache_dir=tmp_path / "c")
    items = list(source.iterate([4, 0, 2]))
    assert items == [(n, expected[RGB_NAMES[n]]) for n in (0, 2, 4)]
    table = build_tar_index(path)
    os.truncate(path, int(table[0, 1, 0]) + 1)  # inside frame 1
    # the archive's stamp changed, so the sources would index it again: keep the old index
    monkeypatch.setattr("epic_ar.features.sources.tar_index", lambda *_: table)
    with pytest.raises(EpicArError) as caught:
        list(source.iterate([0]))
    assert str(caught.value) == f"{path}: truncated at member frame_0000000001.jpg"
