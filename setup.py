"""Builds the optional partial-JPEG-decoding extension (everything else is in pyproject.toml).

It needs libjpeg-turbo's headers (Debian/Ubuntu: libjpeg-dev, Fedora: libjpeg-turbo-devel,
conda: libjpeg-turbo). Without them the build skips it and epic-ar decodes whole frames.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "epic_ar.data._crop_decode",
            ["src/epic_ar/data/_crop_decode.c"],
            libraries=["jpeg"],
            optional=True,
        )
    ]
)
