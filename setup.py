"""Builds the optional partial-JPEG-decoding extension (everything else is in pyproject.toml).

It needs libjpeg-turbo's headers (Debian/Ubuntu: libjpeg-dev, Fedora: libjpeg-turbo-devel,
conda: libjpeg-turbo). Without them the build skips it and epic-ar decodes whole frames.
"""

import sys

from setuptools import Extension, setup

# libdl for dlopen (epic-ar can switch the extension to the faster libjpeg-turbo that Pillow
# bundles); glibc 2.34 and later have it in libc, where -ldl links an empty stub.
LIBRARIES = ["jpeg", "dl"] if sys.platform.startswith("linux") else ["jpeg"]

setup(
    ext_modules=[
        Extension(
            "epic_ar.data._crop_decode",
            ["src/epic_ar/data/_crop_decode.c", "src/epic_ar/data/_pixel_rows.c"],
            depends=["src/epic_ar/data/_pixel_rows.h"],
            libraries=LIBRARIES,
            optional=True,
        )
    ]
)
