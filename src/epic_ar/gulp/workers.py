"""Run gulp tasks in worker processes that stop promptly when the job stops.

Ctrl-C on a terminal sends SIGINT to every process of the job. Only the parent acts on it:
the workers ignore it (they start with it blocked, so not even their start-up can be
interrupted half-way), and the parent cancels the queued tasks, tells the running ones to
stop at their next segment, and terminates the workers still busy a moment later. The same
happens when a task fails. Either way no worker outlives `run_in_workers`, so the caller
can clean up the output knowing that nothing writes to it any more; a worker stopped
mid-chunk leaves at most temporary files (chunks are committed by rename).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from multiprocessing.process import BaseProcess
from typing import Any

Report = Callable[[int, int], None]  # (segments, frames) just processed
# A task: a module-level function (picklable) called as function(*args, report).
Task = tuple[Callable[..., Any], tuple[Any, ...]]

STOP_GRACE_SECONDS = 0.5  # how long running tasks get to stop at a segment boundary
_PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>
# Per-process state of a worker, set by the pool's initializer.
_progress_queue: Any = None
_stop_event: Any = None


class StopRequestedError(Exception):
    """Raised inside a worker's task when the parent has asked the workers to stop."""


def _init_worker(queue: Any, stop: Any) -> None:
    global _progress_queue, _stop_event  # per-process state of the pool
    _progress_queue, _stop_event = queue, stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # blocked by the parent while it spawned us
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # A worker must never outlive a killed parent: at exit it would wait forever to flush
    # progress messages nobody reads, and it would go on gulping meanwhile. Chunks are
    # committed by rename, so dying mid-chunk leaves only a temp file the next run removes.
    queue.cancel_join_thread()
    _die_with_parent()


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies (elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    spawner = multiprocessing.parent_process()
    parent = spawner.pid if spawner is not None else os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - unusual C libraries
        return
    if os.getppid() != parent:  # the parent died before prctl took effect (or at start-up)
        os._exit(1)


def _report_to_parent(segments: int, frames: int) -> None:
    if _stop_event.is_set():
        raise StopRequestedError
    _progress_queue.put((segments, frames))


def _run_task(function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return function(*args, _report_to_parent)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread meanwhile; processes spawned meanwhile inherit the mask.
    A SIGINT arriving meanwhile is delivered (KeyboardInterrupt) when it ends."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop(processes: Sequence[BaseProcess], grace: float) -> None:
    """Wait up to `grace` seconds for the processes to finish, then terminate the others."""
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(2.0)
        if process.is_alive():  # pragma: no cover - SIGTERM is not handled by workers
            process.kill()
            process.join()


def run_in_workers(tasks: Sequence[Task], workers: int, report: Report) -> list[Any]:
    """Run every task in `workers` spawned processes; returns their results in task order.

    `report` (called in this process) receives the tasks' progress reports. The first task
    to raise stops the others and its exception is raised here; so is KeyboardInterrupt.

    Raises:
        whatever a task raised; KeyboardInterrupt. In both cases the workers are gone.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    stop = context.Event()

    def drain() -> None:
        while not queue.empty():
            report(*queue.get())

    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(queue, stop)
    )
    processes: list[BaseProcess] = []
    try:
        with _sigint_blocked():
            futures: list[Future[Any]] = [pool.submit(_run_task, *task) for task in tasks]
            # every worker is started by now (one per submitted task, up to `workers`)
            processes = list(pool._processes.values())  # no public handle before 3.14
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            drain()
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:
                raise failed.exception()  # type: ignore[misc]
        drain()
        return [future.result() for future in futures]
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        _stop(processes, STOP_GRACE_SECONDS)
        raise
    finally:
        pool.shutdown(wait=True)
