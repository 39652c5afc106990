"""A ring of preallocated training batches that DataLoader workers write into.

The standard loader collates each batch into a new shared-memory tensor (77 MB for 64 RGB
samples of [8, 3, 224, 224] uint8), which the main process then touches page by page for
the first time: tens of thousands of page faults per batch, contending with the copy to
the GPU. The ring allocates `slots` batches once, in shared memory (pinned on CUDA, so the
host-to-device copy reads them directly), and reuses them for the whole run.

Who does what, all bookkeeping in the main process:

- `RingBatchSampler` (main process) groups the keys of a sampler into batches and gives
  each batch a free slot as the DataLoader sends it to a worker: the task is
  (slot, keys).
- `RingWriter` (the dataset the workers index) builds each sample as the wrapped dataset
  does and copies it into row i of the slot; it returns a small `RingBatch` (slot, size,
  collated metadata) instead of the pixels.
- `BatchRing.hand_out` (main, before the transfer to the device) turns a `RingBatch` into
  ([size, *item] uint8 view of the slot, metadata), and `BatchRing.release` gives the slot
  back once the consumer is done with it: at once when the batch was copied (the CPU
  normalisation makes a new tensor), or when the CUDA copy has completed (an event).

A slot is never written while it is handed out: the sampler only takes free slots, and a
new epoch frees only the slots that were sent to workers and never handed out (the
DataLoader has drained or stopped those workers by then, see `RingBatchSampler`). The
batches hold the same samples as the standard loader's, in the same order.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset, Sampler, default_collate

from epic_ar.errors import EpicArError


class RingBatch(NamedTuple):
    """What a worker returns: rows [0, size) of ring slot `slot`, and the batch's
    metadata as the standard loader collates it."""

    slot: int
    size: int
    metadata: Any


class BatchRing:
    """`slots` batches of `batch_size` items of `item_shape` uint8 ([K, B, *item] in shared
    memory), and which of them are free, sent to a worker, or being copied to the device
    (any other slot is handed out)."""

    def __init__(self, slots: int, batch_size: int, item_shape: Sequence[int]):
        if slots < 2:
            raise EpicArError(f"a batch ring needs at least 2 slots, not {slots}")
        self.frames = torch.empty((slots, batch_size, *item_shape), dtype=torch.uint8)
        self.frames.share_memory_()  # type: ignore[no-untyped-call]
        self._free: deque[int] = deque(range(slots))
        self._sent: set[int] = set()
        self._copying: deque[tuple[int, torch.cuda.Event]] = deque()

    @property
    def slots(self) -> int:
        return len(self.frames)

    def pin(self) -> bool:
        """Page-lock the ring for CUDA copies (`cudaHostRegister`, undone when the ring is
        garbage-collected); False where it fails (then copies are from pageable memory)."""
        if not torch.cuda.is_available():
            return False
        memory = self.frames.untyped_storage()
        cudart = torch.cuda.cudart()  # type: ignore[no-untyped-call]
        if int(cudart.cudaHostRegister(memory.data_ptr(), memory.nbytes(), 0)) != 0:
            return False
        weakref.finalize(self, _unpin, cudart, memory.data_ptr())
        return True

    def take(self) -> int:
        """A free slot for the next batch sent to a worker (main process).

        Raises:
            EpicArError: every slot is handed out (the consumer keeps batches without
                releasing them).
        """
        self._collect_copies(wait=not self._free)
        if not self._free:
            raise EpicArError(
                f"all {self.slots} slots of the batch ring are in use: batches are kept "
                "without being released"
            )
        slot = self._free.popleft()
        self._sent.add(slot)
        return slot

    def restart(self) -> None:
        """A new pass over the data: slots sent to workers but never handed out are free."""
        self._free.extend(sorted(self._sent))
        self._sent.clear()

    def hand_out(self, batch: RingBatch) -> tuple[torch.Tensor, Any]:
        """([size, *item] uint8, a view of the slot; metadata). The view stays valid until
        `release`."""
        self._sent.discard(batch.slot)
        return self.frames[batch.slot, : batch.size], batch.metadata

    def release(self, slot: int, copied: torch.cuda.Event | None = None) -> None:
        """Give `slot` back: now, or once the CUDA event `copied` (recorded after its copy to
        the device) has completed."""
        if copied is None:
            self._free.append(slot)
        else:
            self._copying.append((slot, copied))

    def _collect_copies(self, wait: bool) -> None:
        """Free the slots whose copies have completed; with `wait`, wait for the oldest."""
        while self._copying:
            slot, copied = self._copying[0]
            if not copied.query():  # type: ignore[no-untyped-call]
                if not wait:
                    break
                copied.synchronize()
            self._copying.popleft()
            self._free.append(slot)
            wait = False


def _unpin(cudart: Any, address: int) -> None:
    torch.cuda.synchronize()  # no copy from the ring may still be running
    cudart.cudaHostUnregister(address)


class RingBatchSampler(Sampler[tuple[int, list[Any]]]):
    """Batches of `batch_size` keys of `sampler` (the last one smaller unless `drop_last`),
    each with the ring slot its samples go to: (slot, keys).

    The DataLoader starts iterating a new epoch only after it has drained the previous
    epoch's tasks (persistent workers) or with new workers, so `restart` at the start of
    each pass frees exactly the slots no worker will write any more.
    """

    def __init__(self, sampler: Any, batch_size: int, ring: BatchRing, drop_last: bool = False):
        self.sampler, self.batch_size, self.ring = sampler, batch_size, ring
        self.drop_last = drop_last

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        items = len(self.sampler)
        return items // self.batch_size if self.drop_last else -(-items // self.batch_size)

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        # A generator: this runs at the first batch, after the DataLoader has drained the
        # previous pass's tasks, so the slots restart frees are written by no one.
        self.ring.restart()
        keys: list[Any] = []
        for key in self.sampler:
            keys.append(key)
            if len(keys) == self.batch_size:
                yield self.ring.take(), keys
                keys = []
        if keys and not self.drop_last:
            yield self.ring.take(), keys


class RingWriter(Dataset[RingBatch]):
    """Indexed by (slot, keys): builds `dataset[key]` for each key ((frames, metadata)
    items) and writes the frames into row i of ring slot `slot` (`frames` [K, B, *item]
    shared); returns the `RingBatch`."""

    def __init__(self, dataset: Dataset[tuple[torch.Tensor, Any]], frames: torch.Tensor):
        self.dataset, self.frames = dataset, frames

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, task: tuple[int, list[Any]]) -> RingBatch:
        if not isinstance(task, tuple):
            raise EpicArError(
                f"the batch ring is indexed by (slot, keys), not {task!r}: a loader option "
                "replaced its sampler (e.g. trainer.overfit_batches); set data.batch_ring=false"
            )
        slot, keys = task
        rows = self.frames[slot]
        metadata = []
        for row, key in enumerate(keys):
            frames, item_metadata = self.dataset[key]
            if frames.shape != rows.shape[1:]:
                raise EpicArError(
                    f"item {key}: frames of shape {list(frames.shape)}, the batch ring holds "
                    f"{list(rows.shape[1:])}"
                )
            rows[row].copy_(frames)
            metadata.append(item_metadata)
        return RingBatch(slot, len(keys), default_collate(metadata))
