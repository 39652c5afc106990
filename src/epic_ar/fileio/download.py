"""Fetching a file from a URL (http(s) or file://) into place, atomically, with progress."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path
from epic_ar.progress import Progress

_CHUNK = 1 << 20  # bytes
_TIMEOUT = 60  # seconds without data


def download(
    url: str,
    destination: Path,
    *,
    force: bool = False,
    check: Callable[[Path], object] | None = None,
) -> Path:
    """Fetch `url` to `destination` (whole or not at all), showing MiB/s and an ETA.
    `check`, when given, is called on the complete temporary file before it is moved into
    place: raising there leaves nothing behind.

    Raises:
        EpicArError: the URL cannot be fetched (named, with the reason).
    """
    with atomic_write_path(destination, force=force) as temporary:
        try:
            with (
                urllib.request.urlopen(url, timeout=_TIMEOUT) as response,
                temporary.open("wb") as out,
            ):
                size = int(response.headers.get("Content-Length") or 0)
                progress = Progress(
                    f"download {destination.name}", -(-size // _CHUNK), unit="MiB", extra_unit=None
                )
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    progress.update(1)
                progress.close()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EpicArError(f"could not download {url}: {reason}") from None
        if check is not None:
            check(temporary)
    return destination
