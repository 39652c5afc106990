"""`epic-ar show`'s files: a contact sheet (PNG) of several segments, or one segment played
(GIF, or MP4)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from epic_ar.data.video_writer import pad_to_even, write_video
from epic_ar.errors import EpicArError, Parameter
from epic_ar.fileio.atomic import atomic_write_path, check_can_write
from epic_ar.modality import Modality
from epic_ar.visualize.flow_colours import FlowView
from epic_ar.visualize.pictures import (
    ShownSegment,
    caption,
    frames_at,
    sampled_frames,
    select_segments,
)

FRAME_HEIGHT = 128  # pixels, frames on a contact sheet
MAX_INPUT_SIZE = 1024  # pixels: 4x the published models' inputs, already upscaled frames
GIF_MAX_DURATION = 655_350  # milliseconds per frame: GIF stores 16 bits of 1/100 s
CAPTION_HEIGHT = 20
MARGIN = 4
SHEET_SUFFIXES = (".png",)
CLIP_SUFFIXES = (".gif", ".mp4")
DEFAULT_FPS = {"rgb": 50.0, "flow": 25.0}  # EPIC-KITCHENS-100's RGB rate; flow: every 2nd


@dataclass(frozen=True)
class ShowOptions:
    """What `epic-ar show` draws. `source`: a gulp directory or frames root; None with
    `videos_dir` (videos, with `labels`). `fps` None: 50 for RGB, 25 for flow
    (EPIC-KITCHENS-100's RGB rate, and flow's, computed for every other frame)."""

    source: Path | None
    out: Path
    labels: Path | None = None
    modality: Modality | None = None  # None: what a gulp directory holds, else rgb
    ids: Sequence[str] | None = None
    random_count: int | None = None
    seed: int = 0
    frame_count: int = 8
    as_input: bool = False
    input_size: int = 224  # with as_input
    flow_view: FlowView = "colour"
    fps: float | None = None
    force: bool = False
    videos_dir: Path | None = None

    def __post_init__(self) -> None:
        if (self.source is None) == (self.videos_dir is None):
            raise EpicArError(
                Parameter("source"), " (a gulp directory or frames root) or ",
                Parameter("videos_dir"), ": give one",
            )  # fmt: skip
        for name, minimum, maximum in (
            ("frame_count", 1, None),
            ("input_size", 1, MAX_INPUT_SIZE),
            ("random_count", 1, None),
        ):
            value = getattr(self, name)
            if value is None and name == "random_count":
                continue
            if (
                not isinstance(value, int)
                or value < minimum
                or (maximum is not None and value > maximum)
            ):
                limits = f"{minimum}-{maximum}" if maximum else f">= {minimum}"
                raise EpicArError(f"{name}: {value!r} is not an integer {limits}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise EpicArError(f"fps: {self.fps!r} is not a number of frames per second > 0")


def _font(size: int = 13) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ValueError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _fit_height(frame: np.ndarray, height: int) -> Image.Image:
    image = Image.fromarray(frame)
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.Resampling.BILINEAR)


def contact_sheet(
    segments: Sequence[ShownSegment], *, frame_height: int = FRAME_HEIGHT
) -> Image.Image:
    """One row per segment: its caption above its frames, scaled to `frame_height` pixels."""
    rows = [[_fit_height(frame, frame_height) for frame in s.frames] for s in segments]
    font = _font()
    widths = [MARGIN + sum(image.width + MARGIN for image in row) for row in rows]
    text_widths = [int(font.getlength(s.caption)) + 2 * MARGIN for s in segments]
    width = max(*widths, *text_widths)
    row_height = CAPTION_HEIGHT + frame_height + MARGIN
    sheet = Image.new("RGB", (width, MARGIN + row_height * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (segment, row) in enumerate(zip(segments, rows, strict=True)):
        top = MARGIN + index * row_height
        draw.text((MARGIN, top + 3), segment.caption, fill="black", font=font)
        left = MARGIN
        for image in row:
            sheet.paste(image, (left, top + CAPTION_HEIGHT))
            left += image.width + MARGIN
    return sheet


def write_clip(frames: np.ndarray, fps: float, path: Path, *, force: bool) -> None:
    """Write [F, H, W, 3] uint8 frames as an animated GIF (looping) or an H.264 MP4."""
    if path.suffix.lower() == ".gif":
        images = [Image.fromarray(frame) for frame in frames]
        with atomic_write_path(path, force=force) as tmp:
            images[0].save(
                tmp, format="GIF", save_all=True, append_images=images[1:],
                duration=min(GIF_MAX_DURATION, max(20, round(1000 / fps))), loop=0,
            )  # fmt: skip
        return
    write_video(path, pad_to_even(frames), fps, force=force)


def show(options: ShowOptions) -> str:
    """Draw what `options` ask for into `options.out`; returns a one-line summary."""
    suffix = options.out.suffix.lower()
    if suffix not in SHEET_SUFFIXES + CLIP_SUFFIXES:
        raise EpicArError(f"{options.out}: write a .png (contact sheet), .gif or .mp4 (clip)")
    check_can_write(options.out, force=options.force)  # before any work
    selection = select_segments(
        options.source,
        options.modality,
        options.labels,
        ids=options.ids,
        random_count=options.random_count,
        seed=options.seed,
        frame_count=options.frame_count,
        input_size=options.input_size,
        videos_dir=options.videos_dir,
    )
    dataset = selection.dataset
    ids = [str(i) for i in selection.annotations.index]
    if suffix in CLIP_SUFFIXES:
        if len(ids) != 1:
            raise EpicArError(
                f"{options.out}: a clip plays one segment; pass one ", Parameter("ids", "id in ids")
            )
        row = selection.table_rows[0]
        everything = np.arange(int(dataset.table.num_frames[row]))
        frames = frames_at(dataset, row, everything, options.flow_view)
        fps = options.fps if options.fps is not None else DEFAULT_FPS[dataset.modality]
        write_clip(frames, fps, options.out, force=options.force)
        count = f"{len(frames)} {dataset.modality} frames"
        return f"wrote {options.out}: {ids[0]}, {count} at {fps:g} fps"
    shown = []
    for narration_id, row in zip(ids, selection.table_rows, strict=True):
        frames = sampled_frames(
            dataset, row, flow_view=options.flow_view, as_input=options.as_input,
            seed=options.seed,
        )  # fmt: skip
        text = caption(narration_id, selection.annotations.loc[narration_id])
        shown.append(ShownSegment(narration_id, text, frames))
    sheet = contact_sheet(shown)
    with atomic_write_path(options.out, force=options.force) as tmp:
        sheet.save(tmp, format="PNG")
    what = "training inputs" if options.as_input else "test-mode frames"
    return (
        f"wrote {options.out}: {len(shown)} {dataset.modality} segments x "
        f"{options.frame_count} {what} ({sheet.width}x{sheet.height} px)"
    )
