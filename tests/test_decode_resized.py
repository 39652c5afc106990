"""Decoding RGB crops resized as they are decoded (`decode_resized`): the bytes of torch's
antialiased bilinear resize of the decoded crop, with the SIMD kernels and the plain C ones."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import simplejpeg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional

from epic_ar.data import decode
from epic_ar.data.decode import CropBox, decode_frames, decode_resized
from epic_ar.data.transforms import RGB_SCALES, multiscale_crop_sizes
from resize_vs_pil import textured

pytestmark = pytest.mark.skipif(
    not decode.PARTIAL_DECODING, reason="the partial-decoding extension is not built"
)


@pytest.fixture(params=["simd", "plain C"])
def kernels(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test with the SIMD row kernels (where the CPU has them) and with plain C."""
    from epic_ar.data import _crop_decode

    _crop_decode.use_simd(request.param == "simd")
    yield str(request.param)
    _crop_decode.use_simd(True)


def encode(pixels: np.ndarray, subsampling: str = "420") -> bytes:
    return bytes(simplejpeg.encode_jpeg(pixels, quality=85, colorsubsampling=subsampling))


def torch_resized(crops: np.ndarray, size: int, mirror: bool) -> np.ndarray:
    """[F, h, w, 3] → [F, size, size, 3]: torch's uint8 resize of the (mirrored) crops."""
    pixels = torch.from_numpy((crops[:, :, ::-1] if mirror else crops).copy())
    channels_last = pixels.permute(0, 3, 1, 2)
    resized = functional.interpolate(
        channels_last, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return resized.permute(0, 2, 3, 1).numpy()


def check_against_torch(
    jpegs: list[bytes], box: CropBox, size: int, *, mirror: bool, fast: bool = False
) -> None:
    whole = decode_frames(jpegs, fast=fast)
    crops = whole[:, box.y : box.y + box.height, box.x : box.x + box.width]
    got = decode_resized(jpegs, box, size, fast=fast, mirror=mirror)
    assert got is not None and got.shape == (len(jpegs), size, size, 3)
    expected = torch_resized(crops, size, mirror)
    assert np.array_equal(got, expected), f"{np.mean(got != expected):.2%} of bytes differ"


@settings(deadline=None, max_examples=40)
@given(
    st.sampled_from(["444", "422", "420"]),
    st.integers(1, 90),
    st.integers(1, 70),
    st.integers(1, 100),
    st.data(),
    st.booleans(),
    st.booleans(),
)
def test_equals_torchs_resize_of_the_decoded_crop(
    subsampling: str,
    width: int,
    height: int,
    size: int,
    data: st.DataObject,
    mirror: bool,
    fast: bool,
) -> None:
    """Any crop, any output size (up and down, by large factors too), both kernels."""
    frame = textured(height + data.draw(st.integers(0, 30)), width + data.draw(st.integers(0, 40)))
    x = data.draw(st.integers(0, frame.shape[1] - width))
    y = data.draw(st.integers(0, frame.shape[0] - height))
    box = CropBox(x, y, width, height)
    from epic_ar.data import _crop_decode

    for simd in (True, False):
        _crop_decode.use_simd(simd)
        try:
            check_against_torch([encode(frame, subsampling)], box, size, mirror=mirror, fast=fast)
        finally:
            _crop_decode.use_simd(True)


@pytest.mark.parametrize("mirror", [False, True])
def test_epic_frames_and_the_training_crops(kernels: str, mirror: bool) -> None:
    """456x256 frames, every multi-scale crop size at two places, resized to 224."""
    jpegs = [encode(textured(256, 456, seed=seed)) for seed in range(3)]
    for width, height in multiscale_crop_sizes(456, 256, RGB_SCALES, 224):
        for x, y in [(0, 0), (456 - width, 256 - height)]:
            check_against_torch(jpegs, CropBox(x, y, width, height), 224, mirror=mirror)


def test_errors_name_the_frame() -> None:
    good = encode(textured(48, 64))
    box = CropBox(0, 0, 32, 32)
    with pytest.raises(ValueError, match="frame 1 of the sample: JPEG decoding failed"):
        decode_resized([good, b"not a jpeg"], box, 16)
    with pytest.raises(ValueError, match="frame 0 of the sample: JPEG decoding failed"):
        large = encode(textured(96, 128))
        decode_resized([large[: len(large) // 2]], box, 16)  # truncated: no silent grey rows
    with pytest.raises(ValueError, match="frame 1 of the sample is 72x48, the first is 64x48"):
        decode_resized([good, encode(textured(48, 72))], box, 16)
    with pytest.raises(ValueError, match=r"frame 1 of the sample: .*outside the image"):
        decode_resized([good, encode(textured(24, 64))], box, 16)
    for outside in [CropBox(40, 0, 32, 32), CropBox(0, -1, 8, 8), CropBox(0, 0, 8, -1)]:
        with pytest.raises(ValueError, match=r"the crop .* is outside the 64x48 frames"):
            decode_resized([good], outside, 16)
    grey = bytes(simplejpeg.encode_jpeg(textured(48, 64, 1), colorspace="GRAY"))
    with pytest.raises(ValueError, match="frame 0 of the sample is greyscale"):
        decode_resized([grey], box, 16)


def test_the_extension_refuses_regions_no_jpeg_has() -> None:
    """Negative numbers reach C as huge unsigned ones: refused, never decoded or allocated."""
    from epic_ar.data import _crop_decode

    good, out = encode(textured(48, 64)), np.empty((2, 16, 16, 3), np.uint8)
    for box in [(0, 0, 8, -1), (-16, 0, 8, 8), (0, -16, 8, 8), (0, 0, 2**26, 8)]:
        with pytest.raises(ValueError, match="outside any JPEG"):
            _crop_decode.decode_crops_resized([good], out, *box, 16, False, False)
        with pytest.raises(ValueError, match="outside any JPEG"):
            _crop_decode.decode_crop(good, out, *box, False, False, False)
    with pytest.raises(ValueError, match="no frames"):
        _crop_decode.decode_crops_resized([], out, 0, 0, 8, 8, 16, False, False)
    with pytest.raises(ValueError, match="output buffer too small"):
        _crop_decode.decode_crops_resized([good] * 3, out, 0, 0, 8, 8, 16, False, False)


def test_none_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "_decode_crops_resized", None)
    assert decode_resized([encode(textured(48, 64))], CropBox(0, 0, 8, 8), 4) is None
