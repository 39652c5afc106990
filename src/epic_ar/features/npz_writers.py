"""Features in npz files: one per video for ActionFormer, or one of annotated segments
(merged from one part per video when a run ends)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from epic_ar.errors import EpicArError
from epic_ar.features.stored import (
    as_float32,
    channels_text,
    check_same,
    check_video_id,
    npz_settings,
    npz_shape,
    settings_arrays,
    write_npz,
)
from epic_ar.fileio.atomic import FORCE, check_can_write
from epic_ar.fileio.paths import check_folder_writable, make_folders, named_write_errors


class ActionFormerWriter:
    """Folder `out` with one `{video}.npz` per video: `feats` float32 [T, C] and each
    setting as a 0-d array (`feat_stride`, `num_frames`, `default_fps`, ...). `force`
    removes the npz files that hold epic-ar settings, never other files."""

    RESERVED = ("feats",)

    def __init__(self, out: Path, settings: dict[str, Any], *, force: bool) -> None:
        self.out = out
        self._settings = settings
        self._arrays = settings_arrays(settings, self.RESERVED)
        if out.exists() and not out.is_dir():
            raise EpicArError(f"{out}: is a file; actionformer writes a folder of .npz files")
        if (out / "data.mdb").exists():
            raise EpicArError(f"{out}: holds an LMDB database; give ActionFormer's features a "
                              "folder of their own")  # fmt: skip
        check_folder_writable(out, out)
        for path, stored in self._ours():
            if force:
                with named_write_errors(path):
                    path.unlink(missing_ok=True)
            else:
                check_same(out, stored, settings)
        with named_write_errors(out):
            make_folders(out)

    def _ours(self) -> list[tuple[Path, dict[str, Any]]]:
        """The npz files in `out` that epic-ar wrote for ActionFormer, with their settings
        (others, e.g. segments files, are other files)."""
        paths = sorted(self.out.glob("*.npz")) if self.out.is_dir() else []
        found = [(path, npz_settings(path)) for path in paths]
        return [(path, s) for path, s in found if s is not None and _actionformer(s)]

    def _path(self, video_id: str) -> Path:
        check_video_id(video_id)
        return self.out / f"{video_id}.npz"

    def finished(self, video_id: str) -> bool:
        return npz_settings(self._path(video_id)) == self._settings

    def commit(
        self, video_id: str, features: np.ndarray, names: Sequence[str] | None = None
    ) -> None:
        """Write `{video_id}.npz` with `feats` = `features` [T, C] in time order."""
        path = self._path(video_id)
        array = as_float32(features, video_id)
        if path.exists() and not _actionformer(npz_settings(path)):
            raise EpicArError(
                f"{path}: exists and was not written by epic-ar for ActionFormer; use another "
                "output folder"
            )
        write_npz(path, {"feats": array, **self._arrays})

    def finish(self, narration_ids: Sequence[str] | None = None) -> None:
        pass  # every video's file is complete when committed

    def close(self) -> None:
        pass

    def summary(self) -> str:
        paths = [path for path, settings in self._ours() if settings == self._settings]
        shapes = [npz_shape(path, "feats") for path in paths]
        channels = {shape[1] for shape in shapes if len(shape) == 2}
        files = f"{len(paths):,} .npz file{'s' if len(paths) != 1 else ''}"
        return (
            f"{self.out}: {sum(s[0] for s in shapes):,} features of {channels_text(channels)} "
            f"float32 values in {files} (feats [T, C] for ActionFormer)"
        )


class SegmentsWriter:
    """One npz `out` of `narration_id` [N] (unicode) and `features` float32 [N, C] in the
    label file's order, plus the settings as 0-d arrays. While a run is under way, each
    video is a part `out.parts/{video}.npz` and the settings are in
    `out.parts/settings.json`; `finish` merges the parts into `out` and removes them.
    `force` removes the parts and lets `finish` overwrite `out`."""

    RESERVED = ("narration_id", "features")

    def __init__(self, out: Path, settings: dict[str, Any], *, force: bool) -> None:
        self.out = out
        self.parts = out.parent / f"{out.name}.parts"
        self._settings = settings
        self._arrays = settings_arrays(settings, self.RESERVED)
        self._summary: str | None = None
        self._complete = False
        if self.parts.exists() and not self.parts.is_dir():
            raise EpicArError(f"{self.parts}: is a file, not the parts folder of a run; remove it")
        written = npz_settings(out) if out.is_file() and not self.parts.exists() else None
        if written is not None and not force:  # a finished run: the same again does nothing
            check_same(out, written, settings)
            self._complete = True
            self._summary = segments_summary(out, npz_shape(out, "features"))
            return
        # an existing `out` is refused unless a parts folder says a run is under way
        check_can_write(out, force=force or self.parts.is_dir())
        if force and self.parts.is_dir():
            with named_write_errors(self.parts):
                shutil.rmtree(self.parts)
        with named_write_errors(self.parts):
            make_folders(self.parts)
            stored = self._adopt_settings()
        check_same(self.parts, stored, settings)

    def _adopt_settings(self) -> dict[str, Any]:
        """Store the settings in the parts folder unless some process did already (link:
        the first one stays), and read back those stored."""
        path = self.parts / "settings.json"
        if not path.exists():
            fd, name = tempfile.mkstemp(prefix=".settings.json.", suffix=".tmp", dir=self.parts)
            try:
                with os.fdopen(fd, "w") as stream:
                    json.dump(self._settings, stream, indent=1)
                    stream.flush()
                    os.fsync(stream.fileno())
                try:
                    os.link(name, path)
                except FileExistsError:
                    pass
                except OSError:  # a file system without hard links
                    if not path.exists():
                        Path(name).replace(path)
            finally:
                Path(name).unlink(missing_ok=True)
        try:
            stored = json.loads(path.read_text())
        except ValueError:
            stored = None
        if not isinstance(stored, dict):
            raise EpicArError(f"{path}: is not a JSON object; pass ", FORCE, " to start again")
        return stored

    def _part(self, video_id: str) -> Path:
        check_video_id(video_id)
        return self.parts / f"{video_id}.npz"

    def finished(self, video_id: str) -> bool:
        return self._complete or self._part(video_id).is_file()

    def commit(
        self, video_id: str, features: np.ndarray, names: Sequence[str] | None = None
    ) -> None:
        """Store the features [N, C] of `video_id`'s segments `names` (N narration ids)."""
        array = as_float32(features, video_id)
        ids = list(names) if names is not None else []
        if (names is None and len(array)) or len(ids) != len(array):
            raise ValueError(f"{video_id}: {len(array)} segment features need as many names")
        narration_id = np.array(ids, dtype=str) if ids else np.zeros(0, dtype="<U1")
        write_npz(self._part(video_id), {"narration_id": narration_id, "features": array})

    def finish(self, narration_ids: Sequence[str] | None = None) -> None:
        """Merge the parts into `out` in the order `narration_ids` (all of them committed),
        atomically, then remove the parts folder."""
        if narration_ids is None:
            raise ValueError("segments: finish needs the narration ids in the output's order")
        if self._complete:
            return
        where: dict[str, tuple[Path, int]] = {}
        for part in sorted(self.parts.glob("*.npz")):
            with np.load(part, allow_pickle=False) as data:
                ids = data["narration_id"].tolist()
            for row, narration_id in enumerate(ids):
                if narration_id in where:
                    raise EpicArError(
                        f"{part}: narration id {narration_id} is in {where[narration_id][0]} too"
                    )
                where[narration_id] = (part, row)
        missing = next((i for i in narration_ids if i not in where), None)
        if missing is not None:
            raise EpicArError(
                f"{self.out}: no feature for narration id {missing} (its video was not "
                "committed); run again to compute it"
            )
        # gather part by part, so that memory holds the output and one part only
        rows: dict[Path, tuple[list[int], list[int]]] = {}
        for index, narration_id in enumerate(narration_ids):
            part, row = where[narration_id]
            rows.setdefault(part, ([], []))[0].append(index)
            rows[part][1].append(row)
        features: np.ndarray | None = None
        for part, (into, taken) in rows.items():
            with np.load(part, allow_pickle=False) as data:
                values = data["features"]
            if features is None:
                features = np.empty((len(narration_ids), values.shape[1]), dtype="<f4")
            if values.shape[1] != features.shape[1]:
                raise EpicArError(
                    f"{part}: features of {values.shape[1]} values, others of "
                    f"{features.shape[1]}; pass ",
                    FORCE,
                    " to start again",
                )
            features[into] = values[taken]
        if features is None:
            features = np.zeros((0, 0), dtype="<f4")
        ids_array = (
            np.array(list(narration_ids), dtype=str) if narration_ids else np.zeros(0, "<U1")
        )
        write_npz(self.out, {"narration_id": ids_array, "features": features, **self._arrays})
        with named_write_errors(self.parts):
            shutil.rmtree(self.parts)
        self._summary = segments_summary(self.out, features.shape)

    def close(self) -> None:
        pass

    def summary(self) -> str:
        if self._summary is not None:
            return self._summary
        done = len(list(self.parts.glob("*.npz"))) if self.parts.is_dir() else 0
        return f"{self.parts}: {done:,} videos' segments, not yet merged into {self.out}"


def _actionformer(settings: dict[str, Any] | None) -> bool:
    return settings is not None and settings.get("format", "actionformer") == "actionformer"


def segments_summary(out: Path, shape: tuple[int, ...]) -> str:
    """One line on a finished segments file of features [N, C]."""
    segments = f"{shape[0]:,} segment{'s' if shape[0] != 1 else ''}"
    return f"{out}: {segments}, {shape[1]} float32 values each (narration_id, features)"
