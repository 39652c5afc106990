"""Grey frames packed four to an RGBA image: decoding into the packing, and back."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from epic_ar.data import _crop_decode, decode
from epic_ar.data.decode import (
    CropBox,
    ScratchBuffer,
    decode_frames,
    decode_grey_quads,
    pack_grey_quads,
    split_grey_quads,
)
from epic_ar.data.transforms import _resize, crop_resize, resize_grey_quads
from resize_vs_pil import textured
from test_transforms import jpeg


def dirty_scratch() -> ScratchBuffer:
    scratch = ScratchBuffer()
    scratch.array((4096,))[:] = 255
    return scratch


def grey_jpegs(count: int, height: int = 40, width: int = 56) -> list[bytes]:
    return [jpeg(textured(height, width, 1, seed=i)) for i in range(count)]


def numpy_quads(frames: np.ndarray) -> np.ndarray:
    """The packing, written independently of `pack_grey_quads`: pad the frame count to a
    multiple of 4 with black frames, then frame 4g + k becomes channel k of group g."""
    count, height, width = frames.shape[:3]
    padded = np.zeros((-(-count // 4) * 4, height, width), np.uint8)
    padded[:count] = frames[..., 0]
    quads: np.ndarray = padded.reshape(-1, 4, height, width).transpose(0, 2, 3, 1)
    return quads


@settings(deadline=None, max_examples=40)
@given(st.integers(1, 13), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_pack_grey_quads_equals_the_numpy_packing(
    count: int, height: int, width: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    frames = rng.integers(1, 256, (count, height, width, 1), dtype=np.uint8)  # no zero pixels
    packed = pack_grey_quads(frames)
    expected = numpy_quads(frames)
    assert packed.shape == expected.shape == (-(-count // 4), height, width, 4)
    assert np.array_equal(packed, expected)
    assert (packed[-1, ..., count % 4 or 4 :] == 0).all() and (packed[..., 0] > 0).all()


@pytest.mark.parametrize("extension", [True, False])
@settings(deadline=None, max_examples=25)
@given(st.integers(1, 11), st.integers(0, 20), st.integers(0, 12), st.booleans())
def test_grey_quads_hold_each_frame_in_its_channel(
    extension: bool, count: int, x: int, y: int, mirror: bool
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        if not extension:
            patch.setattr(decode, "_decode_crop", None)
        jpegs = grey_jpegs(count)
        box = CropBox(x, y, 30, 25)
        quads = decode_grey_quads(jpegs, region=box, mirror=mirror, scratch=dirty_scratch())
    frames = decode_frames(jpegs, region=box, mirror=mirror)
    assert quads.shape == (-(-count // 4), 25, 30, 4)
    assert np.array_equal(quads, numpy_quads(frames))
    for i in range(count):
        assert np.array_equal(quads[i // 4, :, :, i % 4], frames[i, :, :, 0])
    assert not quads[-1, :, :, count % 4 or 4 :].any()  # unused channels are zero


@pytest.mark.parametrize("extension", [True, False])
@pytest.mark.parametrize("count", [1, 4, 7, 80])
def test_split_quads_inverts_the_packing(
    extension: bool, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not extension:
        monkeypatch.setattr(decode, "_split_quads", None)
    frames = np.random.default_rng(count).integers(0, 256, (count, 9, 13, 1), dtype=np.uint8)
    split = split_grey_quads(numpy_quads(frames), count)
    assert split.shape == (count, 9, 13) and split.flags.c_contiguous
    assert np.array_equal(split, frames[..., 0])


def test_packed_resize_equals_one_channel_resize() -> None:
    frames = np.stack([textured(37, 45, 1, seed=i) for i in range(6)])
    one_channel = _resize(torch.from_numpy(frames).permute(0, 3, 1, 2), 24)
    assert torch.equal(resize_grey_quads(pack_grey_quads(frames), 6, 24), one_channel)
    assert torch.equal(crop_resize(frames, CropBox(0, 0, 45, 37), 24), one_channel)


def test_grey_quads_refuse_colour_frames() -> None:
    with pytest.raises(ValueError, match="not a greyscale JPEG"):
        decode_grey_quads([jpeg(textured(40, 56))])


@pytest.mark.skipif(not decode.PARTIAL_DECODING, reason="the extension is not built")
def test_extension_checks_its_buffers() -> None:
    from epic_ar.data import _crop_decode

    data = grey_jpegs(1)[0]
    with pytest.raises(ValueError, match="too small"):
        _crop_decode.decode_crop(data, np.empty(10, np.uint8), 0, 0, 8, 8, True, False, False)
    with pytest.raises(ValueError, match="step"):
        _crop_decode.decode_crop(data, np.empty(999, np.uint8), 0, 0, 8, 8, False, False, False, 4)
    with pytest.raises(ValueError, match="count"):
        _crop_decode.split_quads(np.empty(16, np.uint8), np.empty(8, np.uint8), 5)


def test_scratch_buffer_is_aligned_grows_and_pickles_empty() -> None:
    scratch = ScratchBuffer()
    small = scratch.array((3, 5))
    large = scratch.array((7, 100, 3))
    assert large.shape == (7, 100, 3) and large.ctypes.data % 64 == 0
    assert small.shape == (3, 5)  # an earlier array stays usable after the buffer grows
    copied = pickle.loads(pickle.dumps(scratch))
    assert copied._memory.size == 0


@pytest.mark.parametrize("mirror", [False, True])
def test_grey_quads_of_every_row_width_at_both_edges(mirror: bool) -> None:
    """The vectorised packing moves 16 pixels a step, merging into the other channels'
    bytes, and finishes each row pixel by pixel."""
    jpegs = grey_jpegs(7, height=12, width=48)
    for width in (*range(1, 20), 31, 32, 33, 47, 48):
        for x in (0, 48 - width):
            box = CropBox(x, 2, width, 5)
            quads = decode_grey_quads(jpegs, region=box, mirror=mirror, scratch=dirty_scratch())
            expected = numpy_quads(decode_frames(jpegs, region=box, mirror=mirror))
            assert np.array_equal(quads, expected), (width, x)


needs_extension = pytest.mark.skipif(
    not decode.PARTIAL_DECODING, reason="the partial-decoding extension is not built"
)


def bundled_or_skip() -> Path:
    path = decode.bundled_libjpeg()
    if path is None:
        pytest.skip("this Pillow uses the system's libjpeg")
    return path


@needs_extension
def test_pillow_bundles_libjpeg_turbo_3() -> None:
    assert b"libjpeg-turbo version 3." in bundled_or_skip().read_bytes()


@needs_extension
@pytest.mark.parametrize("fast", [False, True])
def test_both_libjpegs_decode_crops_to_the_same_pixels(fast: bool) -> None:
    """The linked (system) library and Pillow's give the same crops, RGB and grey, mirrored
    or not; and the accurate crops equal simplejpeg's full decodes."""
    path = bundled_or_skip()
    rgb = [jpeg(textured(96, 120, 3, seed=i)) for i in range(3)]
    grey = grey_jpegs(5, 96, 120)
    region = CropBox(x=17, y=9, width=70, height=61)

    def crops() -> list[np.ndarray]:
        return [
            decode_frames(frames, fast=fast, region=region, mirror=mirror).copy()
            for frames in (rgb, grey)
            for mirror in (False, True)
        ]

    previous = decode.libjpeg_path()
    decode.use_libjpeg(None)
    linked = crops()
    try:
        decode.use_libjpeg(path)
        assert _crop_decode.library() == str(path) and decode.libjpeg_in_use() == str(path)
        bundled = crops()
    finally:
        decode.use_libjpeg(previous)
    for a, b in zip(bundled, linked, strict=True):
        assert np.array_equal(a, b)
    if not fast:
        whole = np.stack([simplejpeg.decode_jpeg(f, colorspace="RGB") for f in rgb])
        assert np.array_equal(bundled[0], whole[:, 9:70, 17:87])
        assert np.array_equal(bundled[1], whole[:, 9:70, 17:87][:, :, ::-1])


def run_with_libjpeg(setting: str, preload: str | None = None) -> str:
    """What `decode` chose in a new process with EPIC_AR_LIBJPEG=`setting` (warnings as
    'warned ...')."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "try:\n    from epic_ar.data import decode\n"
        "except UserWarning as w:\n    print('warned', w)\n"
        "else:\n    print(decode.libjpeg_path())"
    )
    env = {**os.environ, "EPIC_AR_LIBJPEG": setting}
    if preload is not None:
        env["LD_PRELOAD"] = preload
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)  # fmt: skip
    return result.stdout.strip()


@needs_extension
def test_epic_ar_libjpeg_chooses_the_library() -> None:
    path = bundled_or_skip()
    assert run_with_libjpeg("") == "None"
    assert run_with_libjpeg("bundled") == str(path)
    assert run_with_libjpeg("/no/such/libjpeg.so").startswith(
        "warned EPIC_AR_LIBJPEG: cannot load '/no/such/libjpeg.so'"
    )


SYSTEM_LIBJPEG = Path("/lib/x86_64-linux-gnu/libjpeg.so.62")


@needs_extension
@pytest.mark.skipif(not SYSTEM_LIBJPEG.exists(), reason="no Debian-style system libjpeg")
def test_a_library_whose_calls_bind_elsewhere_is_refused() -> None:
    """With the system libjpeg loaded globally first, the bundled library's internal calls
    bind to it and it decodes garbage: the probe catches that and keeps the linked one."""
    path = bundled_or_skip()
    out = run_with_libjpeg("bundled", preload=str(SYSTEM_LIBJPEG))
    assert out == (
        f"warned EPIC_AR_LIBJPEG: {path} decodes to other pixels than the linked libjpeg; "
        "decoding with the build's libjpeg"
    )
