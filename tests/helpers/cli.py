"""Running the installed `epic-ar` command in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def epic_ar_command() -> list[str]:
    """The installed console script next to this interpreter (falls back to -m)."""
    script = Path(sys.executable).parent / "epic-ar"
    return [str(script)] if script.exists() else [sys.executable, "-m", "epic_ar"]


RunCli = Callable[..., subprocess.CompletedProcess[str]]
