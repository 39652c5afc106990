"""JPEG decoding and encoding with libjpeg-turbo (simplejpeg), colour or greyscale."""

from __future__ import annotations

import numpy as np
import simplejpeg


def decode_jpeg(jpeg: bytes) -> np.ndarray:
    """Decode with libjpeg-turbo's accurate (default) settings.

    Returns:
        [H, W, 3] uint8 RGB for colour JPEGs, [H, W] uint8 for greyscale ones (flow).
    """
    colorspace = simplejpeg.decode_jpeg_header(jpeg)[2]
    if colorspace == "Gray":
        gray: np.ndarray = simplejpeg.decode_jpeg(jpeg, colorspace="GRAY")[:, :, 0]
        return gray
    rgb: np.ndarray = simplejpeg.decode_jpeg(jpeg, colorspace="RGB")
    return rgb


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Encode [H, W, 3] uint8 RGB, or [H, W] uint8 as a greyscale JPEG."""
    gray = image.ndim == 2
    pixels = np.ascontiguousarray(image[:, :, None] if gray else image)
    return bytes(
        simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="GRAY" if gray else "RGB")
    )
