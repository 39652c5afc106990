"""Leaving a DDP process group when a command's work is done."""

from __future__ import annotations

import torch


def leave_process_group() -> None:
    """Destroy the default process group, if one was started (DDP over N processes).

    Leaving it to the interpreter's exit can abort the process ("terminate called without
    an active exception", status -6) while gloo's threads are still alive.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
