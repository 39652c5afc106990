"""Ctrl-C during a Lightning run: a KeyboardInterrupt again, as everywhere else in epic-ar.

Lightning catches a KeyboardInterrupt inside `Trainer.fit` / `predict` / ..., tears the run
down, ignores SIGINT from then on and calls `sys.exit(1)`: the command would end with status
1 and Lightning's "Detected KeyboardInterrupt" line instead of its own.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


def stopped_by_interrupt(exc: BaseException) -> bool:
    """Whether `exc` ends a Trainer call that Ctrl-C stopped: the KeyboardInterrupt itself,
    or the SystemExit that Lightning raises while handling one."""
    return isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, SystemExit) and isinstance(exc.__context__, KeyboardInterrupt)
    )


@contextlib.contextmanager
def lightning_interrupts() -> Iterator[None]:
    """Within the block, a Trainer call that Ctrl-C stopped raises KeyboardInterrupt (after
    Lightning's teardown), with the SIGINT handler of before the block put back."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SystemExit as exc:
        if not stopped_by_interrupt(exc):
            raise
        _restore_sigint(handler)
        raise KeyboardInterrupt from None
    except KeyboardInterrupt:
        _restore_sigint(handler)
        raise


def _restore_sigint(handler: object) -> None:
    if callable(handler) or handler in (signal.SIG_IGN, signal.SIG_DFL):
        # only the main thread may set handlers; elsewhere Lightning could not have either
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, handler)  # type: ignore[arg-type]
