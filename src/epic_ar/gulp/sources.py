"""Where a video's frames live: one of three layouts, detected per video.

For video `P01_01` of participant `P01` (flow frames in `u/` and `v/` subfolders):

- folders:          FRAMES/P01/P01_01/frame_0000000001.jpg
- official folders: FRAMES/P01/rgb_frames/P01_01/frame_0000000001.jpg
                    FRAMES/P01/flow_frames/P01_01/u/frame_0000000001.jpg
- official tars:    FRAMES/P01/rgb_frames/P01_01.tar   (read in place, members may start "./")
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from epic_ar.errors import EpicArError
from epic_ar.fileio.paths import os_reason

MODALITY_FOLDERS = {"rgb": "rgb_frames", "flow": "flow_frames"}


def frame_name(number: int) -> str:
    """File name of frame `number` (1-based), as in the official archives."""
    return f"frame_{number:010d}.jpg"


def member_name(axis: str, number: int) -> str:
    """Name of frame `number` (1-based) on `axis` in a video's frames: `frame_0000000001.jpg`
    for RGB (axis ""), `u/frame_0000000001.jpg` for flow axis "u" (likewise "v")."""
    return f"{axis}/{frame_name(number)}" if axis else frame_name(number)


class MissingFrameError(EpicArError):
    """A frame the annotations need is not in the video's source."""


class FrameSource(Protocol):
    def where(self, name: str) -> str:
        """Where member `name` is, for messages (a path, or `archive.tar:member`)."""
        ...

    def read(self, name: str) -> bytes:
        """The bytes of member `name` (e.g. `u/frame_0000000001.jpg`)."""
        ...

    def close(self) -> None:
        """Release what the source holds open."""
        ...


@dataclass
class FolderSource:
    root: Path

    def where(self, name: str) -> str:
        return str(self.root / name)

    def read(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            raise MissingFrameError(f"missing frame {self.where(name)}") from None
        except OSError as exc:  # a folder of that name, no permission, an I/O error
            raise MissingFrameError(
                f"unreadable frame {self.where(name)} ({os_reason(exc)})"
            ) from None

    def close(self) -> None:
        pass  # files are opened per read


class TarSource:
    """Members of an uncompressed tar archive, read with `pread` without extracting."""

    def __init__(self, path: Path):
        self.path = path
        self._members: dict[str, tuple[int, int]] = {}
        try:
            with tarfile.open(path, mode="r:") as archive:
                for member in archive:
                    if member.isfile():
                        name = member.name.removeprefix("./")
                        self._members[name] = (member.offset_data, member.size)
        except (tarfile.TarError, OSError) as exc:
            raise EpicArError(f"{path}: unreadable tar archive ({exc})") from exc
        self._fd = os.open(path, os.O_RDONLY)

    def where(self, name: str) -> str:
        return f"{self.path}:{name}"

    def read(self, name: str) -> bytes:
        try:
            offset, size = self._members[name]
        except KeyError:
            raise MissingFrameError(f"missing frame {self.where(name)}") from None
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise EpicArError(
                f"{self.where(name)}: truncated ({len(data)} of {size} bytes; the archive "
                "ends early)"
            )
        return data

    def close(self) -> None:
        os.close(self._fd)


def candidate_locations(
    frames_root: Path, participant: str, video: str, modality: str
) -> list[Path]:
    """The places a video's frames may be, in the order they are tried."""
    official = frames_root / participant / MODALITY_FOLDERS[modality]
    return [frames_root / participant / video, official / video, official / f"{video}.tar"]


def open_video(frames_root: Path, participant: str, video: str, modality: str) -> FrameSource:
    """The frames of one video, from whichever layout holds it.

    Raises:
        EpicArError: no layout holds the video (names every place looked at).
    """
    for location in candidate_locations(frames_root, participant, video, modality):
        if location.suffix == ".tar" and location.is_file():
            return TarSource(location)
        if location.is_dir():
            return FolderSource(location)
    looked = ", ".join(
        str(p.relative_to(frames_root))
        for p in candidate_locations(frames_root, participant, video, modality)
    )
    raise EpicArError(f"unknown video {video}: no frames under {frames_root} (looked for {looked})")
