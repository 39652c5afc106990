"""`predict`: a model's top verbs, nouns and actions for every window of a video.

Each window is scored as `epic-ar test --split val` scores a segment made of the window's
frames: the test-mode sampler with the checkpoint's `data.frame_count`, the test views
(`data.views.segment_views`: clips x crops, settings from the checkpoint's data config by
`data.views.config_view_settings`), the checkpoint's normalisation
(`EpicDataModule.normalize`), and the model's scores averaged over the views before any
softmax (`data.views.average_over_views`).

The input is decoded once, in order; only the frames that the windows not yet scored
sample are kept, and each window's views are built as soon as its last frame is decoded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from epic_ar.data.datamodule import EpicDataModule
from epic_ar.data.views import (
    ViewSettings,
    average_over_views,
    check_view_counts,
    config_view_settings,
    frames_read_by_views,
    segment_views,
)
from epic_ar.errors import EpicArError, Parameter
from epic_ar.fileio.download import FetchError
from epic_ar.fileio.index_cache import default_cache_dir
from epic_ar.modality import config_modality
from epic_ar.models import load_checkpoint
from epic_ar.models.published import PUBLISHED_URLS, download_published
from epic_ar.models.video_model import VideoModel
from epic_ar.prediction.frames import FrameSource, open_frame_source
from epic_ar.prediction.ranking import window_prediction
from epic_ar.prediction.result import VideoPrediction
from epic_ar.prediction.windows import Window, frame_windows
from epic_ar.progress import Progress
from epic_ar.training.run_config import parse_data_config

NO_FLOW = "raw video has no optical flow: predict runs RGB models only"
CPU = Parameter("device", "device='cpu'", metavar="cpu")
URL = Parameter("url", "url=...", metavar="URL")


@dataclass(frozen=True)
class PredictOptions:
    """How `predict` runs.

    `window` / `stride`: seconds (see `prediction.windows`). `fps`: the frame rate of a
    folder of frames (a video file has its own). `top_k`: classes and actions listed per
    window. `clips` x `crops`: test-time views, as `epic-ar test`. `batch_size`: windows
    scored at once. `device`: a torch device ("cpu", "cuda"; None: cuda when available,
    else cpu). `trust`: load a checkpoint naming code outside the allow-list. `url`: with
    a published name, where to fetch it from when it is not cached (a mirror, file://).
    `cache_dir`: where published checkpoints are kept (None: `checkpoint_cache_dir()`).
    `progress`: show windows/s and an ETA on stderr.
    """

    window: float = 2.0
    stride: float = 1.0
    fps: float | None = None
    top_k: int = 5
    clips: int = 1
    crops: int = 1
    batch_size: int = 8
    device: str | None = None
    trust: bool = False
    url: str | None = None
    cache_dir: Path | None = None
    progress: bool = True


def checkpoint_cache_dir() -> Path:
    """Where published checkpoints fetched by name are kept:
    $XDG_CACHE_HOME/epic-ar/checkpoints (default ~/.cache/epic-ar/checkpoints), beside
    the tar indexes (`fileio.index_cache.default_cache_dir`)."""
    return default_cache_dir("checkpoints")


def resolve_checkpoint(
    model: str | Path,
    *,
    url: str | None = None,
    cache_dir: Path | None = None,
    allow_flow: bool = False,
) -> Path:
    """The checkpoint file `model` names: an existing file, or a published name
    (`models.published.PUBLISHED_URLS`: "tsm_rgb", ...) fetched once into `cache_dir`
    (default `checkpoint_cache_dir()`) as NAME.ckpt and reused from there. `url`: fetch a
    published name from there instead (a mirror, or file://...).

    Raises:
        EpicArError: neither a file nor a published name; a flow model's name (unless
            `allow_flow`); `url`
            with a file; the download failed (nothing is left in the cache then).
    """
    path = Path(model)
    if path.exists() or str(model) not in PUBLISHED_URLS:
        if not path.exists():
            names = ", ".join(sorted(PUBLISHED_URLS))
            raise EpicArError(f"{model}: no such checkpoint file, nor a published model ({names})")
        if url is not None:
            raise EpicArError(URL, f" is for a published model name, not a file ({model})")
        return path
    name = str(model)
    if name.endswith("_flow") and not allow_flow:
        raise EpicArError(f"{name}: a flow model; {NO_FLOW}")
    folder = cache_dir if cache_dir is not None else checkpoint_cache_dir()
    cached = folder / f"{name}.ckpt"
    if cached.is_file():
        return cached
    try:
        return download_published(name, folder, url=url)
    except FetchError as exc:
        if url is not None:
            raise
        hint = "; without a network, give a checkpoint file, or "
        raise EpicArError(str(exc), hint, URL, " (e.g. file:///data/tsm_rgb.ckpt)") from None


def load_rgb_model(checkpoint: Path, *, trust: bool = False) -> tuple[VideoModel, dict[str, Any]]:
    """`load_checkpoint(checkpoint)`, refusing flow models."""
    model, config = load_checkpoint(checkpoint, trust=trust)
    if model.spec.modality != "rgb":
        raise EpicArError(f"{checkpoint}: a flow model; {NO_FLOW}")
    return model, config


def choose_device(device: str | None) -> torch.device:
    """`device` as a torch device; None: cuda when available, else cpu.

    Raises:
        EpicArError: an unknown device, or cuda where none is available.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise EpicArError(f"unknown device {device!r}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise EpicArError("no CUDA device is available here; pass ", CPU, " or leave it out")
    return chosen


def window_views(
    frames: Iterator[tuple[int, np.ndarray]],
    windows: list[Window],
    settings: ViewSettings,
    *,
    name: str = "the input",
) -> Iterator[tuple[torch.Tensor, int]]:
    """(the test views of each window, frames decoded since the last one), window by
    window in order, from `frames`: (index, pixels) of at least the frames that
    `wanted_frames` names, in order.

    Keeps only the frames that the windows still to come sample.

    Raises:
        EpicArError: the input (`name`) ends before the last window's frames.
    """
    last_needed = [window.first + int(frames_read_by_views(window.frame_count, settings)[-1])
                   for window in windows]  # fmt: skip
    kept: dict[int, np.ndarray] = {}  # frame number -> pixels, in decode order
    pending, decoded, last_report = 0, 0, 0
    for number, frame in frames:
        decoded = number + 1
        kept[number] = frame
        while pending < len(windows) and last_needed[pending] <= number:
            window = windows[pending]

            def read(indices: np.ndarray, first: int = window.first) -> np.ndarray:
                return np.stack([kept[first + int(i)] for i in indices])

            yield segment_views(read, window.frame_count, settings), decoded - last_report
            last_report = decoded
            pending += 1
            keep_from = windows[pending].first if pending < len(windows) else decoded
            for old in [n for n in kept if n < keep_from]:
                del kept[old]
        if pending == len(windows):
            return
    if pending < len(windows):
        raise EpicArError(
            f"{name}: ended after {decoded} frames, before the end of window "
            f"{windows[pending].start:g}-{windows[pending].end:g} s"
        )


def wanted_frames(windows: list[Window], settings: ViewSettings) -> set[int]:
    """The frame indices the windows' test views sample."""
    needed = [
        window.first + frames_read_by_views(window.frame_count, settings) for window in windows
    ]
    return set(np.concatenate(needed).tolist()) if needed else set()


def window_scores(
    model: VideoModel,
    config: dict[str, Any],
    source: FrameSource,
    windows: list[Window],
    *,
    clips: int = 1,
    crops: int = 1,
    batch_size: int = 8,
    device: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """The scores of every window: [W, 397] float32 (97 verbs, then 300 nouns), the model's
    logits averaged over the test views, each window scored as a test segment of its frames
    (see the module docstring). `model`, `config`: as `load_checkpoint` returns them."""
    modality = config_modality(config.get("modality", "RGB"), "config: modality")
    if modality != "rgb":
        raise EpicArError(NO_FLOW)
    data = parse_data_config(dict(config.get("data", {})))
    settings = config_view_settings(data, clips=clips, crops=crops)
    module = EpicDataModule(data, modality=modality, batch_size=batch_size)
    model.set_frame_count(settings.frame_count)
    target = choose_device(device)
    model = model.eval().to(target)
    title = f"predict {source.path.name}"
    shown = Progress(title, len(windows), unit="windows") if progress else None

    def score(batch: list[torch.Tensor]) -> torch.Tensor:
        frames = module.normalize(torch.stack(batch).to(target))
        with torch.inference_mode():
            return average_over_views(model, frames).float().cpu()

    scores: list[torch.Tensor] = []
    batch: list[torch.Tensor] = []
    decoded = 0
    frames = source.frames(fast_decode=data.fast_decode, wanted=wanted_frames(windows, settings))
    with contextlib.closing(frames):
        for views, new_frames in window_views(frames, windows, settings, name=str(source.path)):
            batch.append(views)
            decoded += new_frames
            if len(batch) == batch_size:
                scores.append(score(batch))
                _update(shown, len(batch), decoded)
                batch, decoded = [], 0
        if batch:
            scores.append(score(batch))
            _update(shown, len(batch), decoded)
    if shown is not None:
        shown.close()
    return torch.cat(scores).numpy() if scores else np.zeros((0, 397), np.float32)


def _update(shown: Progress | None, windows: int, frames: int) -> None:
    if shown is not None:
        shown.update(windows, frames)


def predict(
    model: str | Path,
    video: Path,
    options: PredictOptions = PredictOptions(),
) -> VideoPrediction:
    """The top verbs, nouns and actions of every window of `video` (a video file, or a
    folder of frames at `options.fps`) by `model` (a checkpoint file or a published name,
    see `resolve_checkpoint`).

    The video and the options are checked before a published checkpoint is fetched.

    Raises:
        EpicArError: a bad model, video or option (one line naming it).
    """
    source = open_frame_source(video, fps=options.fps)
    windows = frame_windows(source.frame_count, source.fps, options.window, options.stride)
    for name, value in (("top_k", options.top_k), ("batch_size", options.batch_size)):
        if value < 1:
            raise EpicArError(Parameter(name, metavar="N"), f": {value} is not >= 1")
    check_view_counts(options.clips, options.crops)
    choose_device(options.device)
    checkpoint = resolve_checkpoint(model, url=options.url, cache_dir=options.cache_dir)
    network, config = load_rgb_model(checkpoint, trust=options.trust)
    scores = window_scores(
        network,
        config,
        source,
        windows,
        clips=options.clips,
        crops=options.crops,
        batch_size=options.batch_size,
        device=options.device,
        progress=options.progress,
    )
    return VideoPrediction(
        video=str(video),
        fps=source.fps,
        frames=source.frame_count,
        model=str(model),
        window=options.window,
        stride=options.stride,
        windows=[
            window_prediction(row, window, options.top_k)
            for row, window in zip(scores, windows, strict=True)
        ],
    )
