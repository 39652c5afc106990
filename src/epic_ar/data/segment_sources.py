"""Where a dataset's segments and their JPEG frames come from: a gulp directory, or the
official frame archives (tar files read in place, or extracted folders) plus a label file
(and, in `video_sources`, MP4 videos plus a label file).

Both give a `SegmentTable` (numpy columns, no per-segment Python objects, so that forked
DataLoader workers share it without copying) and read a segment's JPEGs by snippet-frame
index: RGB frame i, or flow pair i as two JPEGs (u, then v).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from epic_ar.annotations.flow_frames import holds_flow_frame_numbers, to_flow_frame_numbers
from epic_ar.annotations.labels import SOURCE_ATTR, read_annotations, require_columns
from epic_ar.data.tar_index import AXES, IndexedTar, cached_tar_index, tar_index
from epic_ar.errors import EpicArError, Parameter
from epic_ar.gulp import GulpDirectory
from epic_ar.gulp.format import committed_chunks
from epic_ar.gulp.sources import FolderSource, candidate_locations, member_name
from epic_ar.modality import Modality
from epic_ar.progress import Progress

if TYPE_CHECKING:  # PyAV is imported when videos are read, not with the training code
    from epic_ar.data.video_sources import VideoSegments

LABEL_COLUMNS = ("verb_class", "noun_class")
_LOCATION_COLUMNS = ("participant_id", "video_id", "start_frame", "stop_frame")


@dataclass
class SegmentTable:
    """One row per segment. String columns are numpy unicode arrays.

    Attributes:
        narration_id, participant_id, video_id: [S] str.
        num_frames: [S] int64, frames (RGB) or u/v pairs (flow) the segment has.
        labels: `verb_class`, `noun_class` → [S] int64; empty for unlabelled splits (test).
    """

    narration_id: np.ndarray
    participant_id: np.ndarray
    video_id: np.ndarray
    num_frames: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.narration_id)

    def metadata(self, row: int) -> dict[str, Any]:
        """Collatable metadata: ids as str, labels as int."""
        meta: dict[str, Any] = {
            "narration_id": str(self.narration_id[row]),
            "video_id": str(self.video_id[row]),
            "participant_id": str(self.participant_id[row]),
        }
        meta.update({name: int(column[row]) for name, column in self.labels.items()})
        return meta


def _label_arrays(metas: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Label columns that every segment's metadata holds as an integer; others left out."""
    labels = {}
    for name in LABEL_COLUMNS:
        values = [meta.get(name) for meta in metas]
        if values and all(isinstance(v, int | np.integer) for v in values):
            labels[name] = np.asarray(values, dtype=np.int64)
    return labels


def _pairs(modality: Modality) -> int:
    return 2 if modality == "flow" else 1


def annotation_rows(
    labels: Path | pd.DataFrame, required_columns: Sequence[str] = ()
) -> tuple[pd.DataFrame, str]:
    """(rows, name for messages) of an annotation file, or of rows already read
    (`read_annotations`' layout, indexed by narration id; named by the file they came from)."""
    if isinstance(labels, pd.DataFrame):
        name = str(labels.attrs.get(SOURCE_ATTR, "annotations"))
        require_columns(labels, required_columns, source=name)
        return labels, name
    return read_annotations(labels, required_columns=required_columns), str(labels)


def annotation_table(rows: pd.DataFrame, num_frames: np.ndarray) -> SegmentTable:
    """The segments of annotation `rows` (`read_annotations`' layout) with `num_frames` [S]
    frames each; their integer verb/noun class columns as labels."""
    return SegmentTable(
        narration_id=rows.index.to_numpy(dtype=str),
        participant_id=rows["participant_id"].to_numpy(dtype=str),
        video_id=rows["video_id"].to_numpy(dtype=str),
        num_frames=np.asarray(num_frames, dtype=np.int64),
        labels={
            name: rows[name].to_numpy(np.int64)
            for name in LABEL_COLUMNS
            if name in rows.columns and pd.api.types.is_integer_dtype(rows[name])
        },
    )


def stored_modality(meta: dict[str, Any]) -> Modality | None:
    """What a gulp segment's metadata says it holds (its frame size: flow [H, W], RGB
    [H, W, 3]); None when it does not say."""
    size = meta.get("frame_size")
    if isinstance(size, list) and len(size) in (2, 3):
        return "flow" if len(size) == 2 else "rgb"
    return None


class GulpSegments:
    """Segments of a gulp directory (ours or one the original project wrote)."""

    def __init__(
        self,
        path: Path,
        modality: Modality | None,
        labels: Path | pd.DataFrame | None = None,
    ):
        """`modality` None: what the directory holds (RGB when its metadata does not say).
        `labels`: serve only these segments, in this order."""
        self.gulp = GulpDirectory(path)
        ids = self.gulp.segment_ids
        if labels is not None:
            rows, name = annotation_rows(labels)
            wanted = rows.index.astype(str).tolist()
            missing = [i for i in wanted if i not in self.gulp]
            if missing:
                raise EpicArError(
                    f"{path}: {len(missing)} segment(s) of {name} are not stored, "
                    f"e.g. {missing[0]!r}"
                )
            ids = wanted
        if not ids:
            raise EpicArError(f"{path}: no segments to serve")
        metas = [self.gulp.meta(i) for i in ids]
        stored = stored_modality(metas[0])
        if modality is not None and stored not in (None, modality):
            raise EpicArError(f"{path}: holds {stored} frames, not {modality}")
        self.modality: Modality = modality or stored or "rgb"
        for key in ("participant_id", "video_id"):
            absent = next((i for i, m in zip(ids, metas, strict=True) if key not in m), None)
            if absent is not None:
                raise EpicArError(f"{path}: segment {absent!r} has no {key!r} in its metadata")
        self.table = SegmentTable(
            narration_id=np.asarray(ids, dtype=str),
            participant_id=np.asarray([str(m["participant_id"]) for m in metas], dtype=str),
            video_id=np.asarray([str(m["video_id"]) for m in metas], dtype=str),
            num_frames=np.asarray([self.gulp.num_frames(i) for i in ids], dtype=np.int64)
            // _pairs(self.modality),
            labels=_label_arrays(metas),
        )

    def frames_location(self, row: int) -> str:
        """Where segment `row`'s frames are stored, for messages."""
        return str(self.gulp.path)

    def read_frames(self, row: int, frame_indices: np.ndarray) -> list[bytes]:
        """JPEGs of snippet frames `frame_indices` (flow: u and v of each pair)."""
        if self.modality == "flow":
            frame_indices = (frame_indices[:, None] * 2 + np.arange(2)).reshape(-1)
        return self.gulp.read_jpegs(str(self.table.narration_id[row]), frame_indices.tolist())


class ArchiveSegments:
    """Segments of a label file, read from the official per-video frame archives.

    Each video is found as gulp finds it (`epic-ar gulp FRAMES` layouts): a tar archive,
    read through its cached member index, or a folder of JPEGs.
    """

    def __init__(
        self,
        frames_root: Path,
        modality: Modality,
        labels: Path | pd.DataFrame,
        *,
        label_frame_numbers: Modality = "rgb",
        index_cache_dir: Path | None = None,
    ):
        """`labels`: an annotation file, or its rows as `read_annotations` returns them."""
        if not frames_root.is_dir():
            raise EpicArError(f"{frames_root}: no such directory (frames)")
        self.frames_root, self.modality, self.index_cache_dir = (
            frames_root, modality, index_cache_dir
        )  # fmt: skip
        frame, name = annotation_rows(labels, _LOCATION_COLUMNS)
        # A table converted by convert-flow-idxs says so: never convert it twice, and never
        # read RGB frames at its (flow) numbers.
        flow_numbered = holds_flow_frame_numbers(frame)
        if modality == "rgb" and flow_numbered:
            raise EpicArError(
                f"{name}: holds flow frame numbers (converted for flow); RGB frames need "
                "the annotations with RGB frame numbers"
            )
        if modality == "flow" and label_frame_numbers == "rgb" and not flow_numbered:
            frame = to_flow_frame_numbers(frame, source=name)
        counts = frame["stop_frame"].to_numpy() - frame["start_frame"].to_numpy()
        counts = counts + (0 if modality == "flow" else 1)
        if len(frame) == 0:
            raise EpicArError(f"{name}: no segments")
        if (counts < 1).any():
            bad = str(frame.index[int(np.argmax(counts < 1))])
            raise EpicArError(f"{name}: segment {bad!r} has no {modality} frames")
        videos = frame[["participant_id", "video_id"]].astype(str).drop_duplicates()
        video_row = {v: i for i, v in enumerate(videos["video_id"])}
        self._video_row = frame["video_id"].astype(str).map(video_row).to_numpy(np.int64)
        self._start = frame["start_frame"].to_numpy(np.int64)
        self._locations = [self._locate(p, v) for p, v in videos.itertuples(index=False)]
        self._tables: dict[int, np.ndarray] = {}
        self._index_archives()
        self.table = annotation_table(frame, counts)

    def _locate(self, participant: str, video: str) -> Path:
        for location in candidate_locations(self.frames_root, participant, video, self.modality):
            if (location.suffix == ".tar" and location.is_file()) or location.is_dir():
                return location
        raise EpicArError(f"unknown video {video}: no {self.modality} frames under "
                          f"{self.frames_root}")  # fmt: skip

    def _index_archives(self) -> None:
        """Map every archive's index, building (once, with progress) those not cached."""
        unindexed = []
        for video, path in enumerate(self._locations):
            if path.suffix == ".tar":
                cached = cached_tar_index(path, self.index_cache_dir)
                if cached is None:
                    unindexed.append(video)
                else:
                    self._tables[video] = cached
        if unindexed:
            progress = Progress(
                "indexing tar archives", len(unindexed), unit="archives", extra_unit=None
            )
            for video in unindexed:
                self._table(video)
                progress.update()
            progress.close()

    def _table(self, video: int) -> np.ndarray:
        table = self._tables.get(video)
        if table is None:
            table = tar_index(self._locations[video], self.index_cache_dir)
            self._tables[video] = table
        return table

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps would be pickled as full arrays: spawned workers map them again.
        return {**self.__dict__, "_tables": {}}

    def frames_location(self, row: int) -> str:
        """Where segment `row`'s frames are stored (its video's archive or folder)."""
        return str(self._locations[int(self._video_row[row])])

    def read_frames(self, row: int, frame_indices: np.ndarray) -> list[bytes]:
        """JPEGs of snippet frames `frame_indices` (flow: u and v of each pair)."""
        video = int(self._video_row[row])
        numbers = self._start[row] + np.asarray(frame_indices, dtype=np.int64)
        axes = AXES[self.modality]
        location = self._locations[video]
        if location.suffix != ".tar":
            folder = FolderSource(location)
            return [folder.read(member_name(axis, n)) for n in numbers.tolist() for axis in axes]
        return IndexedTar(location, self._table(video)).read(numbers, axes)


def is_gulp_directory(path: Path) -> bool:
    return path.is_dir() and bool(committed_chunks(path))


def open_segment_source(
    source: str | Path | None,
    videos_dir: str | Path | None,
    modality: Modality | None,
    labels: str | Path | pd.DataFrame | None,
    *,
    label_frame_numbers: Modality,
    index_cache_dir: Path | None,
) -> SegmentSource:
    """The segments `build_dataset` serves: from a gulp directory, frame archives or
    videos (exactly one of `source` and `videos_dir`; see `build_dataset`)."""
    if (source is None) == (videos_dir is None):
        either = "not both" if source is not None else "none given"
        raise EpicArError(
            f"give a source (gulp directory or frames root) or a videos_dir ({either})"
        )
    if labels is not None and not isinstance(labels, pd.DataFrame):
        labels = Path(labels)
    path = Path(source if source is not None else str(videos_dir))
    if videos_dir is not None:
        if labels is None:
            raise EpicArError(
                f"{path}: to read videos, pass ", Parameter("labels"), " (which segments)"
            )
        from epic_ar.data.video_sources import VideoSegments

        return VideoSegments(path, modality or "rgb", labels)
    if is_gulp_directory(path):
        return GulpSegments(path, modality, labels)
    if labels is None:
        raise EpicArError(
            f"{path}: not a gulp directory; to read frame archives, pass labels (which segments)"
        )
    return ArchiveSegments(
        path,
        modality or "rgb",
        labels,
        label_frame_numbers=label_frame_numbers,
        index_cache_dir=index_cache_dir,
    )


# Where a dataset's segments come from (each has `table`, `modality`, `read_frames` and
# `frames_location`).
SegmentSource: TypeAlias = "GulpSegments | ArchiveSegments | VideoSegments"
