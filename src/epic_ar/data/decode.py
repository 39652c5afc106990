"""JPEG frames to uint8 arrays: whole frames, or only the crop a sample needs.

Decoding is libjpeg-turbo's accurate mode by default (integer DCT, fancy upsampling: the
pixels PIL and OpenCV give, on which the published checkpoints were trained).

The optional C extension `_crop_decode` (built when libjpeg-turbo's headers are present)
decodes only a crop region of each frame, mirrors it as it copies rows out, and can write
grey frames straight into the 4-channel packing that the resize uses. For RGB training
samples it also resizes each row as it leaves the decoder (`decode_resized`), with torch's
uint8 antialiased bilinear arithmetic, so the bytes equal torch's resize of the crop. Its
pixels equal those of a full decode (tested); without it, whole frames are decoded with
simplejpeg and the same results are produced with array operations and torch.

The extension decodes with the libjpeg it was built against (the system's). It can call
another libjpeg-turbo instead, loaded at import: `EPIC_AR_LIBJPEG=bundled` takes the 3.x
that Pillow's wheels bundle, `EPIC_AR_LIBJPEG=/path/libjpeg.so.62` names one. Measured on
the training loader, Pillow's 3.2 against Debian 12's 2.1.5 gained 1-5%, within the spread
of repeated runs (see the performance docs), so the default stays the build's library.
`libjpeg_in_use()` says which is in use.
"""

from __future__ import annotations

import importlib.util
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import simplejpeg

# decode_crop(jpeg, out, x, y, width, height, gray, fast, mirror, step) -> (image width, height)
DecodeCrop = Callable[
    [bytes, npt.NDArray[np.uint8], int, int, int, int, bool, bool, bool, int], tuple[int, int]
]
# split_quads(src, dst, count)
SplitQuads = Callable[[npt.NDArray[np.uint8], npt.NDArray[np.uint8], int], None]
# decode_crops_resized(jpegs, out, x, y, width, height, size, fast, mirror) -> [(width, height)]
DecodeCropsResized = Callable[
    [Sequence[bytes], npt.NDArray[np.uint8], int, int, int, int, int, bool, bool],
    list[tuple[int, int]],
]
_decode_crop: DecodeCrop | None
_split_quads: SplitQuads | None
_decode_crops_resized: DecodeCropsResized | None
try:
    from epic_ar.data import _crop_decode

    _decode_crop, _split_quads = _crop_decode.decode_crop, _crop_decode.split_quads
    _decode_crops_resized = _crop_decode.decode_crops_resized
except ImportError:  # pragma: no cover - depends on the build machine
    _decode_crop, _split_quads, _decode_crops_resized = None, None, None

PARTIAL_DECODING = _decode_crop is not None


def bundled_libjpeg() -> Path | None:
    """Pillow's own libjpeg-turbo (wheels bundle it as pillow.libs/libjpeg-*.so.62* on Linux,
    PIL/.dylibs/libjpeg.62*.dylib on macOS), or None for a Pillow built on the system's."""
    spec = importlib.util.find_spec("PIL")
    if spec is None or spec.origin is None:
        return None
    package = Path(spec.origin).parent
    found = sorted(package.parent.glob("pillow.libs/libjpeg-*.so.62*"))
    found += sorted(package.glob(".dylibs/libjpeg.62*.dylib"))
    return found[0] if found else None


def _probe_jpeg() -> bytes:
    """A small 4:2:0 JPEG of smooth colours, to compare two libraries' pixels."""
    y, x = np.mgrid[0:40, 0:56]
    pixels = np.stack([x * 4, y * 6, (x + y) * 2], axis=-1).astype(np.uint8)
    return bytes(simplejpeg.encode_jpeg(pixels, quality=85, colorsubsampling="420"))


def use_libjpeg(path: Path | None) -> None:
    """Decode crops with the libjpeg-turbo at `path` from now on (None: the one the
    extension was built against), in this process (DataLoader workers started by spawn
    choose again, from `EPIC_AR_LIBJPEG`). The library must be a libjpeg 6.2 ABI build
    whose pixels equal the linked library's on a probe image: that check catches a library
    whose internal calls bind to another libjpeg already loaded in the process.

    Raises:
        OSError: `path` cannot be loaded, lacks the functions the extension calls, or
            decodes the probe to other pixels (the linked library is kept).
    """
    if _decode_crop is None:
        return
    if path is None:
        _crop_decode.use_library(None)
        return
    if _crop_decode.JPEG_LIB_VERSION != 62:
        raise OSError(f"the extension is built for libjpeg {_crop_decode.JPEG_LIB_VERSION}")
    probe = _probe_jpeg()
    previous = _crop_decode.library()
    expected = np.empty((30, 40, 3), np.uint8)
    _crop_decode.use_library(None)
    _decode_crop(probe, expected, 9, 5, 40, 30, False, False, True, 3)
    _crop_decode.use_library(str(path))
    got = np.empty_like(expected)
    try:
        _decode_crop(probe, got, 9, 5, 40, 30, False, False, True, 3)
        same = np.array_equal(got, expected)
    except ValueError:
        same = False
    if not same:
        _crop_decode.use_library(previous)
        raise OSError(f"{path} decodes to other pixels than the linked libjpeg")


def _choose_libjpeg() -> None:
    """Use the libjpeg `EPIC_AR_LIBJPEG` names ("bundled": Pillow's; a path), if any."""
    wanted = os.environ.get("EPIC_AR_LIBJPEG", "")
    if not PARTIAL_DECODING or wanted in ("", "linked"):
        return
    try:
        path = bundled_libjpeg() if wanted == "bundled" else Path(wanted)
        if path is None:
            raise OSError("this Pillow bundles no libjpeg")
        use_libjpeg(path)
    except OSError as exc:  # a setting, not an input: warn and decode anyway
        warnings.warn(f"EPIC_AR_LIBJPEG: {exc}; decoding with the build's libjpeg", stacklevel=1)


_choose_libjpeg()


def libjpeg_path() -> Path | None:
    """The libjpeg `use_libjpeg` chose, None for the extension's own (or no extension)."""
    chosen = _crop_decode.library() if PARTIAL_DECODING else None
    return Path(chosen) if chosen is not None else None


def libjpeg_in_use() -> str:
    """The libjpeg the extension decodes with, for reports."""
    if not PARTIAL_DECODING:
        return "none (the extension is not built)"
    path = libjpeg_path()
    return str(path) if path is not None else "the one linked at build time"


_ALIGN = 64  # bytes


@dataclass(frozen=True)
class CropBox:
    """A crop in pixels: left `x`, top `y`, `width`, `height`."""

    x: int
    y: int
    width: int
    height: int


def jpeg_frame_size(jpeg: bytes) -> tuple[int, int, bool]:
    """(height, width, is_grey) from a JPEG's header."""
    height, width, colorspace, _ = simplejpeg.decode_jpeg_header(jpeg)
    return height, width, colorspace == "Gray"


class ScratchBuffer:
    """Reusable decode memory, 64-byte aligned (torch's resize kernels run faster on aligned
    rows). An array taken from it stays valid until the next one is taken."""

    def __init__(self) -> None:
        self._memory = np.empty(0, dtype=np.uint8)

    def __reduce__(self) -> tuple[type[ScratchBuffer], tuple[()]]:
        return ScratchBuffer, ()  # workers start with their own, empty

    def array(self, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised uint8 array of `shape` in this buffer (grown as needed)."""
        size = math.prod(shape)
        if self._memory.size < size + _ALIGN:
            self._memory = np.empty(size + _ALIGN, dtype=np.uint8)
        start = -self._memory.ctypes.data % _ALIGN
        return self._memory[start : start + size].reshape(shape)


def _scratch_array(scratch: ScratchBuffer | None, shape: tuple[int, ...]) -> np.ndarray:
    return (scratch if scratch is not None else ScratchBuffer()).array(shape)


def _check_size(index: int, size: tuple[int, int], first: tuple[int, int]) -> None:
    if size != first:
        raise ValueError(
            f"frame {index} of the sample is {size[0]}x{size[1]}, the first is "
            f"{first[0]}x{first[1]}"
        )


def _decode_region(
    decode_crop: DecodeCrop,
    jpeg: bytes,
    index: int,
    out: np.ndarray,
    region: CropBox,
    options: tuple[bool, bool, bool, int],
) -> tuple[int, int]:
    try:
        box = (region.x, region.y, region.width, region.height)
        return decode_crop(jpeg, out, *box, *options)
    except ValueError as exc:
        raise ValueError(f"frame {index} of the sample: {exc}") from None


def _decode_whole(jpegs: Sequence[bytes], frames: np.ndarray, gray: bool, fast: bool) -> None:
    height, width = frames.shape[1:3]
    for i, jpeg in enumerate(jpegs):
        try:
            decoded = simplejpeg.decode_jpeg(
                jpeg,
                colorspace="GRAY" if gray else "RGB",
                fastdct=fast,
                fastupsample=fast,
                buffer=frames[i],
            )
        except ValueError as exc:  # also raised when a larger frame does not fit the buffer
            raise ValueError(f"frame {i} of the sample: {exc}") from None
        _check_size(i, (decoded.shape[1], decoded.shape[0]), (width, height))


# What a segment source returns for a list of frame indices: the frames' JPEG bytes (gulp
# directories, frame archives), or the frames already decoded, [F, H, W, 3] uint8 RGB (videos).
FrameData = Sequence[bytes] | np.ndarray


def frame_data_size(frames: FrameData) -> tuple[int, int, bool]:
    """(height, width, is_grey) of the first frame of `frames`."""
    if isinstance(frames, np.ndarray):
        return frames.shape[1], frames.shape[2], frames.shape[3] == 1
    return jpeg_frame_size(frames[0])


def decoded_pixels(
    frames: FrameData, *, fast: bool = False, scratch: ScratchBuffer | None = None
) -> np.ndarray:
    """[F, H, W, C] uint8 whole frames: `frames` decoded, or as they are when already pixels."""
    if isinstance(frames, np.ndarray):
        return frames
    return decode_frames(frames, fast=fast, scratch=scratch)


def decode_frames(
    jpegs: Sequence[bytes],
    *,
    fast: bool = False,
    region: CropBox | None = None,
    mirror: bool = False,
    scratch: ScratchBuffer | None = None,
) -> np.ndarray:
    """Decode JPEGs of one size: [F, h, w, 3] uint8 RGB or [F, h, w, 1] grey (grey when the
    first frame is), the whole frames or only `region` of each, mirrored left-right if
    `mirror`.

    `fast` uses libjpeg-turbo's fast DCT and upsampling (gulpio2's choice): quicker, but
    pixels move by several grey levels from what PIL/OpenCV (and the published models) see.
    `scratch`, when given, is grown as needed and decoded into (the result may be a view of
    it, valid until the next call with the same scratch).

    Raises:
        ValueError: a frame is not a JPEG, or its size differs from the first frame's.
    """
    height, width, gray = jpeg_frame_size(jpegs[0])
    channels = 1 if gray else 3
    # Whole frames: simplejpeg's full-frame path is a little faster than the extension's.
    decode_crop = _decode_crop if region is not None or mirror else None
    region = region or CropBox(0, 0, width, height)
    if decode_crop is not None:
        frames = _scratch_array(scratch, (len(jpegs), region.height, region.width, channels))
        for i, jpeg in enumerate(jpegs):
            options = (gray, fast, mirror, channels)
            size = _decode_region(decode_crop, jpeg, i, frames[i], region, options)
            _check_size(i, size, (width, height))
        return frames
    frames = _scratch_array(scratch, (len(jpegs), height, width, channels))
    _decode_whole(jpegs, frames, gray, fast)
    frames = frames[:, region.y : region.y + region.height, region.x : region.x + region.width]
    return np.ascontiguousarray(frames[:, :, ::-1]) if mirror else frames


def pack_grey_quads(frames: np.ndarray) -> np.ndarray:
    """[F, h, w, 1] uint8 grey → [ceil(F/4), h, w, 4]: frame 4g + k in channel k of group g,
    unused channels of the last group zero (torch's uint8 resize is vectorised for 4
    interleaved channels, not for 1)."""
    count, height, width = frames.shape[:3]
    quads = np.empty((-(-count // 4), height, width, 4), dtype=np.uint8)
    for channel in range(4):
        part = frames[channel::4, :, :, 0]
        quads[: len(part), :, :, channel] = part
        quads[len(part) :, :, :, channel] = 0
    return quads


def split_grey_quads(quads: np.ndarray, count: int) -> np.ndarray:
    """Inverse of `pack_grey_quads`: [G, h, w, 4] → [count, h, w] uint8, a new array."""
    groups, height, width = quads.shape[:3]
    if _split_quads is None:
        planes = np.ascontiguousarray(quads.transpose(0, 3, 1, 2))
        frames: np.ndarray = planes.reshape(groups * 4, height, width)[:count].copy()
        return frames
    frames = np.empty((count, height, width), dtype=np.uint8)
    _split_quads(np.ascontiguousarray(quads), frames, count)
    return frames


def decode_grey_quads(
    jpegs: Sequence[bytes],
    *,
    fast: bool = False,
    region: CropBox | None = None,
    mirror: bool = False,
    scratch: ScratchBuffer | None = None,
) -> np.ndarray:
    """Decode grey JPEGs of one size, packed: [ceil(F/4), h, w, 4] uint8 (see
    `pack_grey_quads`), the whole frames or `region`, mirrored if `mirror`. The extension
    writes the packing as it decodes; the result may be a view of `scratch`.

    Raises:
        ValueError: a frame is not a JPEG or not grey, or its size differs from the first's.
    """
    height, width, gray = jpeg_frame_size(jpegs[0])
    if not gray:
        raise ValueError("frame 0 of the sample is not a greyscale JPEG")
    region = region or CropBox(0, 0, width, height)
    if _decode_crop is None:
        return pack_grey_quads(decode_frames(jpegs, fast=fast, region=region, mirror=mirror))
    count = len(jpegs)
    quads = _scratch_array(scratch, (-(-count // 4), region.height, region.width, 4))
    quads[-1, :, :, count % 4 or 4 :] = 0
    for i, jpeg in enumerate(jpegs):
        group, channel = divmod(i, 4)
        out = quads[group].reshape(-1)[channel:]  # every 4th byte from `channel` on
        options = (True, fast, mirror, 4)
        _check_size(i, _decode_region(_decode_crop, jpeg, i, out, region, options), (width, height))
    return quads


def decode_resized(
    jpegs: Sequence[bytes], region: CropBox, size: int, *, fast: bool = False, mirror: bool = False
) -> np.ndarray | None:
    """`region` of each JPEG (one or more, of one size; the first RGB) resized to `size` x
    `size`: [F, size, size, 3] uint8 RGB, a new array, mirrored left-right if `mirror`; None
    without the C extension.

    The bytes equal torch's `interpolate(mode="bilinear", antialias=True)` of the decoded
    crop (`crop_resize`): the extension uses the same integer weights and passes, and resizes
    each row as the decoder hands it out.

    Raises:
        ValueError: the first frame is greyscale, `region` does not fit it, a frame is not
            a JPEG, or its size differs from the first frame's.
    """
    if _decode_crops_resized is None:
        return None
    height, width, gray = jpeg_frame_size(jpegs[0])
    if gray:
        raise ValueError("frame 0 of the sample is greyscale, not RGB")
    box = (region.x, region.y, region.width, region.height)
    if min(box) < 0 or region.x + region.width > width or region.y + region.height > height:
        raise ValueError(
            f"the crop {box} (x, y, width, height) is outside the {width}x{height} frames"
        )
    frames = np.empty((len(jpegs), size, size, 3), dtype=np.uint8)
    try:
        sizes = _decode_crops_resized(jpegs, frames, *box, size, fast, mirror)
    except ValueError as exc:
        if len(exc.args) != 2:  # not about one frame
            raise
        message, index = exc.args
        raise ValueError(f"frame {index} of the sample: {message}") from None
    for i, frame_size in enumerate(sizes):
        _check_size(i, frame_size, (width, height))
    return frames
