"""What features are computed over, one video at a time: the windows of a whole video on a
timeline (RULSTM, ActionFormer), or the annotated segments of a video; and the batches of
test views a DataLoader makes of them.

Batches never span two videos and always start at a video's first window or segment, so a
video's features come out the same whatever ran before it: a resumed run writes what an
uninterrupted one would.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from epic_ar.data.dataset import SegmentDataset
from epic_ar.data.views import (
    ViewSettings,
    centre_view,
    check_view_counts,
    clip_frame_indices,
    clip_positions,
)
from epic_ar.errors import EpicArError
from epic_ar.features.sources import VideoFrames, stack_frames
from epic_ar.features.timeline import TIMELINE_FPS, actionformer_windows, rulstm_windows
from epic_ar.prediction.windows import Window

TimelineKind = Literal["rulstm", "actionformer"]


@dataclass(frozen=True)
class Timeline:
    """Where on a video's time features are computed: RULSTM's every 1/`fps` s over the
    `window_sec` before it, or ActionFormer's every `stride` frames of `fps` over `clip`
    frames (see `features.timeline`)."""

    kind: TimelineKind
    fps: float = TIMELINE_FPS
    window_sec: float = 1.0
    stride: int = 16
    clip: int = 32

    def windows(self, frame_count: int, fps: float) -> list[Window]:
        """The windows of a source of `frame_count` frames at `fps`, in time order."""
        if self.kind == "rulstm":
            return rulstm_windows(
                frame_count, fps, timeline_fps=self.fps, window_sec=self.window_sec
            )
        return actionformer_windows(
            frame_count, fps, timeline_fps=self.fps, stride=self.stride, clip=self.clip
        )


@dataclass(frozen=True)
class VideoJob:
    """One video's features: over the windows of `source` on a timeline, or (`source`
    None) over the segments `items` (indices of the test dataset) named `names`."""

    video_id: str
    source: VideoFrames | None = None
    items: tuple[int, ...] = ()
    names: tuple[str, ...] = ()


SnippetKey = tuple[int, ...]  # a snippet's frame indices in its video


@dataclass(frozen=True)
class ViewBatch:
    """Up to a batch of one video's windows or segments; `frames`: source frames newly
    read, for progress; `last`: the video's final batch.

    Views: `views` [b, T, C, S, S] uint8, a view per window or segment. Snippets (`windows`
    not empty): `views` [u, C, S, S] are the snippets `snippets` no earlier batch of the
    video held, `windows` the T snippets of each of the b windows, and snippets of frames
    before `keep_from` are needed by no later window.
    """

    job: int
    views: torch.Tensor
    frames: int
    last: bool
    snippets: tuple[SnippetKey, ...] = ()
    windows: tuple[tuple[SnippetKey, ...], ...] = ()
    keep_from: int = 0

    def pin_memory(self) -> ViewBatch:
        """The batch with its views in page-locked memory (DataLoader's `pin_memory`)."""
        return replace(self, views=self.views.pin_memory())


@dataclass(frozen=True)
class WindowCrops:
    """One window's frames (`sample` [T x L] frame indices, snippet by snippet) and the
    crops they index; `frames` read since the last window; `keep_from`: the first frame
    any later window samples (or the frames read, after the last window)."""

    sample: np.ndarray
    crops: dict[int, torch.Tensor]
    frames: int
    keep_from: int


class ViewBatches(IterableDataset[ViewBatch]):
    """The test views of every job's windows or segments, `batch_size` at a time.

    With DataLoader workers, job j goes whole to worker j mod W, so a video's frames are read
    in order by one process (videos decode forward, never seeking per window).
    """

    def __init__(
        self,
        jobs: list[VideoJob],
        settings: ViewSettings,
        batch_size: int,
        *,
        timeline: Timeline | None = None,
        dataset: SegmentDataset | None = None,
        snippets: bool = False,
    ):
        """`snippets`: send each timeline snippet once per video, for models whose
        features are averages of per-snippet ones (TSN, TRN; see `ViewBatch`)."""
        if settings.clips * settings.crops != 1:  # a feature is of the one test view
            check_view_counts(settings.clips, settings.crops)
            raise EpicArError("features are computed on one view (clips=1, crops=1)")
        self.jobs, self.settings, self.batch_size = jobs, settings, batch_size
        self.timeline, self.dataset, self.snippets = timeline, dataset, snippets

    def __iter__(self) -> Iterator[ViewBatch]:
        worker = get_worker_info()
        share, shares = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        for index, job in enumerate(self.jobs):
            if index % shares == share:
                yield from self._batches(index, job)

    def _batches(self, index: int, job: VideoJob) -> Iterator[ViewBatch]:
        if job.source is not None and self.snippets:
            parts: Iterator[Any] = self._timeline_snippets(job)
            batch_of: Callable[[list[Any]], ViewBatch] = functools.partial(_snippet_batch, index)
        else:
            parts = (
                self._timeline_views(job) if job.source is not None else self._segment_views(job)
            )
            batch_of = functools.partial(_view_batch, index)
        held: ViewBatch | None = None  # yielded once it is known whether it is the last
        batch: list[Any] = []
        for part in parts:
            batch.append(part)
            if len(batch) == self.batch_size:
                if held is not None:
                    yield held
                held, batch = batch_of(batch), []
        if batch:
            if held is not None:
                yield held
            held = batch_of(batch)
        if held is None:  # a video shorter than one time step: no features, committed so
            held = ViewBatch(index, torch.zeros(0, dtype=torch.uint8), 0, False)
        yield replace(held, last=True)

    def _timeline_views(self, job: VideoJob) -> Iterator[tuple[torch.Tensor, int]]:
        """The test view of each window, in order, and the frames read since the last."""
        count, size = self.settings.frame_count, self.settings.input_size
        for window in self._window_crops(job):
            view = torch.stack([window.crops[i] for i in window.sample.tolist()])
            yield view.reshape(count, -1, size, size), window.frames

    def _timeline_snippets(
        self, job: VideoJob
    ) -> Iterator[tuple[tuple[SnippetKey, ...], list[tuple[SnippetKey, torch.Tensor]], int, int]]:
        """Per window: its T snippets, the ones not sent before with their [L x C, S, S]
        crops, the frames read since the last window, and `keep_from`."""
        length, size = self.settings.snippet_length, self.settings.input_size
        sent: set[SnippetKey] = set()
        for window in self._window_crops(job):
            indices = window.sample.tolist()
            keys = tuple(tuple(indices[t : t + length]) for t in range(0, len(indices), length))
            new = [
                (key, torch.stack([window.crops[i] for i in key]).reshape(-1, size, size))
                for key in dict.fromkeys(keys)
                if key not in sent
            ]
            sent.update(key for key, _ in new)
            yield keys, new, window.frames, window.keep_from
            sent = {key for key in sent if key[0] >= window.keep_from}

    def _window_crops(self, job: VideoJob) -> Iterator[WindowCrops]:
        """Each window's frames and their crops, in order.

        Each frame is decoded and transformed once, however many windows sample it (a
        RULSTM window every 1/30 s samples frames of about 30 windows): the test transform
        works frame by frame, so a window's view is its frames' crops stacked.
        """
        source, timeline, settings = job.source, self.timeline, self.settings
        assert source is not None and timeline is not None
        windows = timeline.windows(source.frame_count, source.fps)
        if not windows:
            return
        (position,) = clip_positions(1)  # the one test view's clip
        samples = [
            window.first + clip_frame_indices(window.frame_count, position, settings)
            for window in windows
        ]
        last_needed = [int(sample.max()) for sample in samples]
        frames = source.iterate(set(np.concatenate(samples).tolist()))
        crops: dict[int, torch.Tensor] = {}  # frame index -> [C, S, S] uint8 (C: 3 or u, v)
        size, pending, read, reported = settings.input_size, 0, 0, 0
        try:
            for index, item in frames:
                try:
                    view = centre_view(stack_frames([item]), settings)
                except ValueError as exc:  # a frame that does not decode
                    reason = str(exc).removeprefix("frame 0 of the sample: ")
                    raise EpicArError(f"{source.path}: frame {index + 1}: {reason}") from None
                crops[index] = view.reshape(-1, size, size)
                read = index + 1
                while pending < len(windows) and last_needed[pending] <= index:
                    keep_from = windows[pending + 1].first if pending + 1 < len(windows) else read
                    yield WindowCrops(samples[pending], crops, read - reported, keep_from)
                    reported, pending = read, pending + 1
                    for old in [n for n in crops if n < keep_from]:
                        del crops[old]
                if pending == len(windows):
                    return
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        raise EpicArError(f"{source.path}: ended after {read} frames, before the end of window "
                          f"{windows[pending].start:g}-{windows[pending].end:g} s")  # fmt: skip

    def _segment_views(self, job: VideoJob) -> Iterator[tuple[torch.Tensor, int]]:
        dataset = self.dataset
        assert dataset is not None
        for item in job.items:
            views, _ = dataset[item]
            yield views, int(dataset.table.num_frames[dataset.rows[item]])


def _view_batch(job: int, parts: list[tuple[torch.Tensor, int]]) -> ViewBatch:
    return ViewBatch(job, torch.stack([view for view, _ in parts]), sum(n for _, n in parts), False)


def _snippet_batch(job: int, parts: list[Any]) -> ViewBatch:
    new = [snippet for _, snippets, _, _ in parts for snippet in snippets]
    views = torch.stack([crop for _, crop in new]) if new else torch.zeros(0, dtype=torch.uint8)
    return ViewBatch(
        job,
        views,
        sum(frames for _, _, frames, _ in parts),
        False,
        snippets=tuple(key for key, _ in new),
        windows=tuple(keys for keys, _, _, _ in parts),
        keep_from=parts[-1][3],
    )
