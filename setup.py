"""Builds the optional partial-JPEG-decoding extension (everything else is in pyproject.toml).

It needs libjpeg-turbo's headers (Debian/Ubuntu: libjpeg-dev, Fedora: libjpeg-turbo-devel,
conda: libjpeg-turbo). Without them the build skips it and epic-ar decodes whole frames.
"""

import sys

from setuptools import Extension, setup

# libdl for dlopen (epic-ar can switch the extension to the faster libjpeg-turbo that Pillow
# bundles); glibc 2.34 and later have it in libc, where -ldl links an empty stub.
LIBRARIES = ["jpeg", "dl"] if sys.platform.startswith("linux") else ["jpeg"]
# The module, then the files with headers (decoding rows, copying rows, the RGB resize).
EXTENSION_SOURCES = ["_crop_decode", "_jpeg_rows", "_pixel_rows", "_resize_rgb", "_resize_rgb_avx2"]

setup(
    ext_modules=[
        Extension(
            "epic_ar.data._crop_decode",
            [f"src/epic_ar/data/{name}.c" for name in EXTENSION_SOURCES],
            depends=[f"src/epic_ar/data/{name}.h" for name in EXTENSION_SOURCES[1:4]],
            libraries=LIBRARIES,
            optional=True,
        )
    ]
)
