"""Fetching a file from a URL (http(s) or file://) into place, atomically, with progress."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from epic_ar.errors import EpicArError
from epic_ar.fileio.atomic import atomic_write_path
from epic_ar.progress import Progress

_CHUNK = 1 << 20  # bytes
_TIMEOUT = 60  # seconds without data
# What fetching (not writing) raises: bad URLs, network and HTTP errors, short reads.
_FETCH_ERRORS = (urllib.error.URLError, OSError, ValueError, http.client.HTTPException)


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
        FetchError: the URL cannot be fetched (naming the URL and `destination`).
        EpicArError: `check` refused the file (naming the URL, `destination` and the
            reason; never the temporary file, which is gone).
        UnwritablePathError: `destination` cannot be written (no permission, full disk).
    """
    with atomic_write_path(destination, force=force) as temporary:
        try:
            response = urllib.request.urlopen(url, timeout=_TIMEOUT)
        except _FETCH_ERRORS as exc:
            raise _fetch_error(url, destination, exc) from None
        with response, temporary.open("wb") as out:
            size = int(response.headers.get("Content-Length") or 0)
            progress = Progress(
                f"download {destination.name}", -(-size // _CHUNK), unit="MiB", extra_unit=None
            )
            while chunk := _read(response, url, destination):
                out.write(chunk)  # an OSError here is about `destination` (atomic_write_path)
                progress.update(1)
            progress.close()
        if check is not None:
            try:
                check(temporary)
            except EpicArError as exc:
                message = str(exc.text.without_suggestions())  # a download never trusts
                reason = message.removeprefix(f"{temporary}: ").replace(str(temporary), "it")
                raise EpicArError(
                    f"{url}: downloaded, but not stored as {destination}: {reason}"
                ) from None
    return destination


def _read(response: Any, url: str, destination: Path) -> bytes:
    try:
        chunk: bytes = response.read(_CHUNK)
    except _FETCH_ERRORS as exc:
        raise _fetch_error(url, destination, exc) from None
    return chunk


class FetchError(EpicArError):
    """The bytes could not be fetched (no network, no such file:// file, a broken
    connection), as opposed to fetched bytes that are not what they should be."""


def _fetch_error(url: str, destination: Path, exc: BaseException) -> FetchError:
    reason = getattr(exc, "reason", None) or exc
    return FetchError(f"could not download {url} (for {destination}): {reason}")
