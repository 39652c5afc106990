"""Optical flow as pictures: colour-coded (direction as hue, magnitude as brightness) or its
u and v components side by side in greyscale."""

from __future__ import annotations

from typing import Literal

import numpy as np

FlowView = Literal["colour", "uv"]
FLOW_ZERO = 128  # the grey level of zero motion in the EPIC flow JPEGs


def flow_to_colour(u: np.ndarray, v: np.ndarray, *, full_scale: float | None = None) -> np.ndarray:
    """Colour-code optical flow: direction as hue, magnitude as brightness.

    Args:
        u, v: [..., H, W] uint8 flow components (128 = no motion).
        full_scale: the magnitude (grey levels) drawn at full brightness; default: the 99th
            percentile of all the magnitudes given (at least 1), so faint motion shows.
    Returns:
        [..., H, W, 3] uint8 RGB. Rightward motion is red, downward yellow-green, leftward
        cyan, upward violet; no motion is black.
    """
    from matplotlib.colors import hsv_to_rgb

    du = u.astype(np.float32) - FLOW_ZERO
    dv = v.astype(np.float32) - FLOW_ZERO
    magnitude = np.hypot(du, dv)
    if full_scale is None:
        full_scale = max(float(np.percentile(magnitude, 99)), 1.0)
    hue = (np.arctan2(dv, du) / (2 * np.pi)) % 1.0
    value = np.clip(magnitude / full_scale, 0.0, 1.0)
    hsv = np.stack([hue, np.ones_like(hue), value], axis=-1)
    return np.round(hsv_to_rgb(hsv) * 255).astype(np.uint8)


def flow_pictures(u: np.ndarray, v: np.ndarray, view: FlowView) -> np.ndarray:
    """[F, H, W] uint8 u and v → [F, H, W', 3] uint8: colour-coded (W' = W) or u beside v
    in greyscale (W' = 2W)."""
    if view == "colour":
        return flow_to_colour(u, v)
    grey = np.concatenate([u, v], axis=2)
    return np.repeat(grey[..., None], 3, axis=3)
