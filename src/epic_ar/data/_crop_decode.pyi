from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

def decode_crop(
    jpeg: bytes,
    out: npt.NDArray[np.uint8],
    x: int,
    y: int,
    width: int,
    height: int,
    gray: bool,
    fast: bool,
    mirror: bool,
    step: int = ...,
    /,
) -> tuple[int, int]: ...
def decode_crops_resized(
    jpegs: Sequence[bytes],
    out: npt.NDArray[np.uint8],
    x: int,
    y: int,
    width: int,
    height: int,
    size: int,
    fast: bool,
    mirror: bool,
    /,
) -> list[tuple[int, int]]: ...
def use_simd(flag: bool, /) -> None: ...
def split_quads(src: npt.NDArray[np.uint8], dst: npt.NDArray[np.uint8], count: int, /) -> None: ...
def use_library(path: str | None, /) -> None: ...
def library() -> str | None: ...

JPEG_LIB_VERSION: int
