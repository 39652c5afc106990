"""Where features go: an LMDB environment as RULSTM reads it, one `.npz` per video as
ActionFormer reads it, or one `.npz` of annotated segments.

Every writer commits one whole video at a time, so that a rerun can skip the finished
videos and a run killed at any moment (SIGKILL included) leaves nothing a rerun would
trust half-written: the LMDB keys of a video and its marker go in one transaction, each
`.npz` is written beside its final name and renamed onto it. Each output records the
settings it was written with (plain JSON values) and refuses to be continued with others.
Several processes may commit different videos to one output at once (one per device);
one of them calls `finish` once the others are done.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from epic_ar.errors import EpicArError, Parameter
from epic_ar.features import FORMATS
from epic_ar.features.lmdb_writer import RulstmLmdbWriter
from epic_ar.features.npz_writers import ActionFormerWriter, SegmentsWriter
from epic_ar.features.stored import plain_settings

__all__ = ["FORMATS", "FeatureFormat", "FeatureWriter", "open_writer"]

FeatureFormat = Literal["rulstm-lmdb", "actionformer", "segments"]
FORMAT = Parameter("format", "format=NAME", metavar="NAME")


class FeatureWriter(Protocol):
    """An output being written. `commit` stores one whole video's `features` [N, C] (any
    float dtype, stored as float32); `names` are the N narration ids (segments only)."""

    out: Path

    def finished(self, video_id: str) -> bool: ...
    def commit(
        self, video_id: str, features: np.ndarray, names: Sequence[str] | None = None
    ) -> None: ...
    def finish(self, narration_ids: Sequence[str] | None = None) -> None: ...
    def close(self) -> None: ...
    def summary(self) -> str: ...


def open_writer(
    fmt: FeatureFormat,
    out: Path,
    settings: dict[str, Any],
    *,
    force: bool = False,
    initial_map_size: int = 64 << 20,
) -> FeatureWriter:
    """Open `out` for features in format `fmt`, new or to resume with the same `settings`
    (plain JSON values); `force` starts again (see each writer). `initial_map_size`: bytes
    of a new LMDB environment's map, which grows as needed.

    Raises:
        EpicArError: `out` is of the wrong kind, holds other data, or was written with
            other settings.
    """
    plain = plain_settings(settings)
    if fmt == "rulstm-lmdb":
        return RulstmLmdbWriter(out, plain, force=force, initial_map_size=initial_map_size)
    if fmt == "actionformer":
        return ActionFormerWriter(out, plain, force=force)
    if fmt == "segments":
        return SegmentsWriter(out, plain, force=force)
    raise EpicArError(FORMAT, f": {fmt!r} is not one of {', '.join(FORMATS)}")
