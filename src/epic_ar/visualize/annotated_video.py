"""`predict --video-out`: the input video with the current window's top-3 actions drawn on
every frame (H.264 MP4)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from epic_ar.data.video_writer import pad_to_even, write_video
from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import check_can_write
from epic_ar.prediction.outputs import format_p
from epic_ar.prediction.result import VideoPrediction, WindowPrediction
from epic_ar.visualize.timeline import check_windows, nearest_windows

SHOWN_ACTIONS = 3
FONT_HEIGHT_SHARE = 1 / 20  # text size as a share of the frame height
MIN_FONT_SIZE = 10  # pixels: still legible on small frames
BOX_OPACITY = 0.6  # of the black box behind the text
TEXT_COLOUR = (255, 255, 255)


def font_size(frame_height: int) -> int:
    """Pixels: 1/20 of the frame height, at least 10 (13 on 456x256, 54 on 1920x1080)."""
    return max(MIN_FONT_SIZE, round(frame_height * FONT_HEIGHT_SHARE))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ValueError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _seconds(value: float) -> str:
    """'1.25', '2', '0.3' (two decimals at most, rounding away k * stride's float noise)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def window_lines(window: WindowPrediction) -> list[str]:
    """The text drawn for a window: its time span, then its top-3 actions with p."""
    lines = [f"{_seconds(window.start)}-{_seconds(window.end)} s"]
    for rank, action in enumerate(window.actions[:SHOWN_ACTIONS], start=1):
        lines.append(f"{rank}. {action.name}  {format_p(action.p, decimals=2)}")
    return lines


@dataclass(frozen=True)
class Overlay:
    """A drawn text box: `rgb` [h, w, 3] float32 and `alpha` [h, w, 1] float32 in [0, 1], to
    blend onto a frame's top-left corner at (`top`, `left`)."""

    top: int
    left: int
    rgb: np.ndarray
    alpha: np.ndarray

    def blend(self, frame: np.ndarray) -> np.ndarray:
        """A copy of `frame` [H, W, 3] uint8 with the box drawn on it."""
        out: np.ndarray = frame.copy()
        h, w = self.alpha.shape[:2]
        region = out[self.top : self.top + h, self.left : self.left + w].astype(np.float32)
        mixed = region * (1 - self.alpha) + self.rgb * self.alpha
        out[self.top : self.top + h, self.left : self.left + w] = np.rint(mixed).astype(np.uint8)
        return out


def draw_overlay(lines: list[str], frame_height: int, frame_width: int) -> Overlay:
    """The box of `lines` for frames of that size: a semi-transparent black box in the top-left
    corner with white text, sized from the frame height (`font_size`), cut to the frame."""
    size = font_size(frame_height)
    font = _font(size)
    margin, padding, spacing = max(1, size // 3), max(2, size // 3), max(1, size // 4)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    box = probe.multiline_textbbox((0, 0), "\n".join(lines), font=font, spacing=spacing)
    right, bottom = box[2], box[3]
    width = min(int(right) + 2 * padding, frame_width - margin)
    height = min(int(bottom) + 2 * padding, frame_height - margin)
    width, height = max(1, width), max(1, height)
    text_mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(text_mask).multiline_text(
        (padding, padding), "\n".join(lines), fill=255, font=font, spacing=spacing
    )
    ink = np.asarray(text_mask, dtype=np.float32)[..., None] / 255.0
    # Box (black, BOX_OPACITY) under the text (white, opaque where the glyphs are).
    alpha = BOX_OPACITY + (1 - BOX_OPACITY) * ink
    rgb = np.broadcast_to(np.asarray(TEXT_COLOUR, np.float32) * ink / np.maximum(alpha, 1e-6),
                          (height, width, 3)).astype(np.float32)  # fmt: skip
    return Overlay(min(margin, frame_height - 1), min(margin, frame_width - 1), rgb, alpha)


def annotated_frames(
    prediction: VideoPrediction, frames: Iterable[np.ndarray]
) -> Iterator[np.ndarray]:
    """`frames` one by one with the box of the window nearest each frame's time drawn on
    (frame n is at n / fps), padded to even sizes; boxes are drawn once per window.

    Raises:
        EpicArError: no windows, no frame rate, or a frame is not [H, W, 3] uint8 or its
            size differs from the first one's.
    """
    centres = check_windows(prediction)
    if not (prediction.fps > 0):
        raise EpicArError(f"{prediction.video}: fps {prediction.fps!r} is not > 0")
    shape: tuple[int, ...] | None = None
    shown, overlay = -1, None
    for number, frame in enumerate(frames):
        pixels = np.asarray(frame)
        if shape is None and pixels.ndim == 3 and pixels.shape[2] == 3:
            shape = pixels.shape
        if pixels.dtype != np.uint8 or pixels.shape != shape:
            wanted = "[H, W, 3]" if shape is None else f"{shape} like the first frame"
            raise EpicArError(
                f"{prediction.video}: frame {number} is {pixels.dtype} {pixels.shape}, "
                f"not {wanted} uint8"
            )
        index = int(nearest_windows(np.array([number / prediction.fps]), centres)[0])
        if overlay is None or index != shown:
            lines = window_lines(prediction.windows[index])
            overlay, shown = draw_overlay(lines, pixels.shape[0], pixels.shape[1]), index
        yield pad_to_even(overlay.blend(pixels))


def write_annotated_video(
    prediction: VideoPrediction, frames: Iterable[np.ndarray], path: Path, *, force: bool = False
) -> Path:
    """Write `frames` (every frame of the input, [H, W, 3] uint8 RGB, in order, at
    `prediction.fps`) to the MP4 `path` with the current window's top-3 actions drawn on each.

    The current window of frame n (at time n / fps) is the one whose centre is nearest
    (`timeline.nearest_windows`, ties to the earlier), so frames after the last window's
    centre, including an end no window covers, show the last window. The box, in the
    top-left corner, holds the window's time span and its top-3 actions with p, text 1/20
    of the frame height high (`font_size`). Frames are streamed, never held together. The
    output is H.264 (yuv420p) at the same fps with the same frame count; the same size
    when it is even, else padded by one black row or column at the bottom or right.

    Raises:
        EpicArError: `path` does not end in .mp4, exists without `force`, or cannot be
            written; no frames, or frames of differing sizes. Nothing is left at `path`.
    """
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise EpicArError(f"{path}: the annotated video is an MP4; give a name ending in .mp4")
    check_can_write(path, force=force)  # before decoding anything
    stream = annotated_frames(prediction, frames)
    first = next(stream, None)
    if first is None:
        raise EpicArError(f"{path}: no frames to write")

    def everything() -> Iterator[np.ndarray]:
        yield first
        yield from stream

    return write_video(path, everything(), prediction.fps, codec="libx264", force=force)
