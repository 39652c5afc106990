"""Whole videos as sources of frames, for features on a timeline: a video file (MP4), or
the released JPEG frames of one video in any layout `epic-ar gulp` reads (a folder of
frames, or an official tar archive read in place).

A source has `frame_count` frames at `fps`, frame i (0-based) at time i / fps:

- a video file: its frames in presentation order at the stream's rate, decoded and resized
  to 256 pixels high inside the decoder, as the released frames were made;
- released frames: frame number i + 1 (`frame_0000000001.jpg` is index 0) at the released
  rate R (`annotations.video_frames.released_fps`: 60 for `P01_01`, 50 for `P01_101`); flow
  frame j stands for RGB frame (j - 1) * stride + 1 (`annotations.flow_frames`: stride 2
  for 2018 videos, 1 for 2020), so flow frames run at R / stride.

Sources hold only paths and numbers, so they pickle into spawned DataLoader workers; a tar
archive's member index is memory-mapped from its cache file when frames are read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from epic_ar.annotations.flow_frames import flow_stride
from epic_ar.annotations.video_frames import released_fps
from epic_ar.data.decode import FrameData
from epic_ar.data.tar_index import AXES, IndexedTar, tar_index
from epic_ar.data.video import RELEASED_FRAME_HEIGHT, frame_table, iterate_wanted_frames
from epic_ar.errors import EpicArError, Parameter
from epic_ar.gulp.sources import FolderSource, member_name
from epic_ar.modality import Modality

# decoded pixels [H, W, 3] uint8 | an RGB JPEG | a flow frame's (u, v) JPEGs
FrameItem = np.ndarray | bytes | tuple[bytes, bytes]

FRAMES_DIR = Parameter("frames_dir", metavar="DIR")
VIDEOS_DIR = Parameter("videos_dir", metavar="DIR")
_FRAME_FILE = re.compile(r"frame_(\d{10})\.jpg")
_READ_CHUNK = 1024  # frames located in the archive index and read at a time
KIND = {"rgb": "RGB", "flow": "flow"}  # modalities as messages name them
OTHER: dict[Modality, Modality] = {"rgb": "flow", "flow": "rgb"}


class VideoFrames(Protocol):
    """One whole video as frames: `frame_count` frames at `fps`, frame i at i / fps s."""

    @property
    def video_id(self) -> str: ...

    @property
    def path(self) -> Path:
        """The video file, tar archive or frame folder (for messages)."""
        ...

    @property
    def modality(self) -> Modality: ...

    @property
    def fps(self) -> float: ...

    @property
    def frame_count(self) -> int: ...

    def iterate(self, wanted: Collection[int] | None = None) -> Iterator[tuple[int, FrameItem]]:
        """(index, item) of every frame, or only of indices in `wanted`, in increasing
        index order."""
        ...


def _selection(wanted: Collection[int] | None, frame_count: int, path: Path) -> list[int] | None:
    """The sorted indices of `wanted` (None: every frame).

    Raises:
        EpicArError: an index outside [0, frame_count).
    """
    if wanted is None:
        return None
    indices = sorted({int(i) for i in wanted})
    if indices and (indices[0] < 0 or indices[-1] >= frame_count):
        bad = indices[0] if indices[0] < 0 else indices[-1]
        raise EpicArError(f"{path}: frame {bad} asked for, but the source has {frame_count}")
    return indices


@dataclass(frozen=True)
class VideoFileFrames:
    """A video file FFmpeg reads (RGB): frames [H, W, 3] uint8 RGB, 256 pixels high."""

    video_id: str
    path: Path
    fps: float
    frame_count: int
    modality: Modality = "rgb"

    @classmethod
    def from_file(cls, video_id: str, path: Path) -> VideoFileFrames:
        """The frames of `path`, counted from its frame table (read once, then cached).

        Raises:
            EpicArError: the file is missing, unreadable, or holds no frames.
        """
        info = frame_table(Path(path)).info
        if info.frame_count < 1 or not info.fps > 0:
            raise EpicArError(f"{path}: {info.frame_count} frames at {info.fps} fps, no video")
        return cls(video_id, Path(path), float(info.fps), int(info.frame_count))

    def iterate(self, wanted: Collection[int] | None = None) -> Iterator[tuple[int, FrameItem]]:
        """(index, [H, W, 3] uint8 RGB) in order, decoding the video once from the start
        and stopping after the last wanted frame.

        Raises:
            EpicArError: an index outside the video, or decoding ends before a wanted frame.
        """
        selection = _selection(wanted, self.frame_count, self.path)
        if selection == []:
            return
        chosen = frozenset(selection) if selection is not None else None
        expected = iter(selection if selection is not None else range(self.frame_count))
        frames = iterate_wanted_frames(self.path, chosen, height=RELEASED_FRAME_HEIGHT)
        for index, pixels in frames:
            if index >= self.frame_count:  # more frames than its table counts: not ours
                break
            next(expected)
            yield index, pixels
        missing = next(expected, None)
        if missing is not None:
            raise EpicArError(
                f"{self.path}: decoding ended before frame {missing} (the video's frame "
                f"table counts {self.frame_count} frames)"
            )


@dataclass(frozen=True)
class ReleasedFrames:
    """The released JPEG frames of one video (`path`: its tar archive or frame folder):
    RGB items are JPEG bytes, flow items (u, v) JPEG pairs."""

    video_id: str
    path: Path
    modality: Modality
    fps: float
    frame_count: int
    archive: bool  # `path` is a tar archive (else a folder)
    index_cache_dir: Path | None = None  # where the archive's member index is cached

    @classmethod
    def from_location(
        cls,
        video_id: str,
        location: Path,
        modality: Modality,
        *,
        index_cache_dir: Path | None = None,
    ) -> ReleasedFrames:
        """The frames at `location` (a tar archive or a folder of one video): frames
        1..M, M the highest frame number there. Builds an archive's index if not cached.

        Raises:
            EpicArError: the id is not named like an EPIC video (the rate is unknown), the
                location holds the other modality or no frames, a frame number between
                1 and M is missing ("missing frame <where>"), or an unreadable archive.
        """
        rate = released_fps(video_id)
        if modality == "flow":
            rate_of_frames = rate / int(flow_stride(pd.Series([video_id]))[0])
        else:
            rate_of_frames = float(rate)
        archive = location.suffix == ".tar" and location.is_file()
        if archive:
            count = _archive_frame_count(location, modality, index_cache_dir)
        else:
            count = _folder_frame_count(location, modality)
        return cls(video_id, location, modality, rate_of_frames, count, archive, index_cache_dir)

    def iterate(self, wanted: Collection[int] | None = None) -> Iterator[tuple[int, FrameItem]]:
        """(index, JPEG bytes, or (u, v) JPEG bytes for flow) in order, index i being frame
        number i + 1.

        Raises:
            EpicArError: an index outside the video, or a frame missing or unreadable
                (the video changed since it was opened).
        """
        selection = _selection(wanted, self.frame_count, self.path)
        indices: Sequence[int] = range(self.frame_count) if selection is None else selection
        if self.archive:
            yield from self._from_archive(indices)
            return
        folder = FolderSource(self.path)
        for index in indices:
            jpegs = [folder.read(member_name(axis, index + 1)) for axis in AXES[self.modality]]
            yield index, _item(jpegs)

    def _from_archive(self, indices: Sequence[int]) -> Iterator[tuple[int, FrameItem]]:
        archive = IndexedTar(self.path, tar_index(self.path, self.index_cache_dir))
        axes = AXES[self.modality]
        for start in range(0, len(indices), _READ_CHUNK):
            chunk = list(indices[start : start + _READ_CHUNK])
            jpegs = archive.read(np.asarray(chunk, dtype=np.int64) + 1, axes)
            for k, index in enumerate(chunk):
                yield index, _item(jpegs[k * len(axes) : (k + 1) * len(axes)])


def _item(jpegs: list[bytes]) -> FrameItem:
    return (jpegs[0], jpegs[1]) if len(jpegs) == 2 else jpegs[0]


def _first_gap(present: np.ndarray) -> int | None:
    """The first frame number (1-based) not in `present` [M + 1] bool (entry 0 unused)."""
    gaps = np.flatnonzero(~present[1:])
    return int(gaps[0]) + 1 if gaps.size else None


def _archive_frame_count(path: Path, modality: Modality, cache_dir: Path | None) -> int:
    table = tar_index(path, cache_dir)
    axes = AXES[modality]
    if table.shape[0] != len(axes):
        raise EpicArError(f"{path}: holds {KIND[OTHER[modality]]} frames, not {KIND[modality]}")
    if table.shape[1] < 2:  # only a frame_0000000000.jpg
        raise EpicArError(f"missing frame {path}:{member_name(axes[0], 1)}")
    for axis_index, axis in enumerate(axes):
        gap = _first_gap(table[axis_index, :, 1] >= 0)
        if gap is not None:
            raise EpicArError(f"missing frame {path}:{member_name(axis, gap)}")
    return int(table.shape[1] - 1)


def _frame_numbers(folder: Path) -> list[int]:
    """The numbers of the `frame_0000000001.jpg` files in `folder` (none if no folder)."""
    try:
        with os.scandir(folder) as entries:
            return [
                int(match.group(1))
                for entry in entries
                if (match := _FRAME_FILE.fullmatch(entry.name)) and entry.is_file()
            ]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise EpicArError(f"{folder}: cannot list frames ({exc.strerror or exc})") from None


def _folder_frame_count(path: Path, modality: Modality) -> int:
    axes = AXES[modality]
    numbers = [_frame_numbers(path / axis) for axis in axes]
    if not any(numbers):
        if any(_frame_numbers(path / axis) for axis in AXES[OTHER[modality]]):
            other = KIND[OTHER[modality]]
            raise EpicArError(f"{path}: holds {other} frames, not {KIND[modality]}")
        layout = "u/ and v/ folders of frame_*.jpg" if modality == "flow" else "frame_*.jpg"
        raise EpicArError(f"{path}: no {KIND[modality]} frames (no {layout})")
    last = max(max(n, default=0) for n in numbers)
    folder = FolderSource(path)
    for axis, found in zip(axes, numbers, strict=True):
        present = np.zeros(last + 1, dtype=bool)
        present[found] = True
        gap = _first_gap(present)
        if gap is not None:
            raise EpicArError(f"missing frame {folder.where(member_name(axis, gap))}")
    return last


def stack_frames(items: Sequence[FrameItem]) -> FrameData:
    """The items as `data.decode.FrameData` for `data.views.segment_views`: pixels stacked
    [F, H, W, 3]; RGB JPEGs as a list; flow pairs as [u0, v0, u1, v1, ...] (the order the
    gulp and archive segment sources give flow JPEGs).

    Raises:
        ValueError: no items, or items of different kinds.
    """
    if not items:
        raise ValueError("no frames to stack")
    if all(isinstance(item, np.ndarray) for item in items):
        return np.stack([item for item in items if isinstance(item, np.ndarray)])
    if all(isinstance(item, bytes) for item in items):
        return [item for item in items if isinstance(item, bytes)]
    if all(isinstance(item, tuple) and len(item) == 2 for item in items):
        return [jpeg for item in items if isinstance(item, tuple) for jpeg in item]
    raise ValueError("frames of different kinds (pixels, JPEGs, flow pairs) in one window")
