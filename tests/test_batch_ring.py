"""The batch ring: the standard loader's batches from preallocated slots, with no slot
written while a consumer holds it, across epochs, early stops and worker counts."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from epic_ar.data.batch_ring import BatchRing, RingBatch, RingBatchSampler, RingWriter
from epic_ar.data.dataset import SeededShuffleSampler
from epic_ar.errors import EpicArError

ITEM = (2, 3, 4, 4)


class KeyedItems(Dataset[tuple[torch.Tensor, dict[str, Any]]]):
    """Items that are a function of their key (index, seed): every byte says which item
    and which draw it is, so a batch from the wrong slot or an overwritten row shows."""

    def __init__(self, length: int):
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, dict[str, Any]]:
        index, seed = key
        values = torch.arange(torch.Size(ITEM).numel(), dtype=torch.int64) + 7 * index + seed
        return (values % 251).to(torch.uint8).reshape(ITEM), {"index": index, "seed": seed % 1000}


def expected_batches(dataset: KeyedItems, sampler: SeededShuffleSampler, batch_size: int,
                     epoch: int) -> list[tuple[torch.Tensor, dict[str, Any]]]:  # fmt: skip
    """The standard loader's batches of `epoch`, as the training loader builds them."""
    sampler.set_epoch(epoch)
    return list(DataLoader(dataset, batch_size=batch_size, sampler=sampler))


def ring_loader(dataset: KeyedItems, sampler: SeededShuffleSampler, batch_size: int,
                workers: int, slots: int) -> tuple[DataLoader[Any], BatchRing]:  # fmt: skip
    ring = BatchRing(slots, batch_size, ITEM)
    loader = DataLoader(
        RingWriter(dataset, ring.frames),
        batch_size=None,
        sampler=RingBatchSampler(sampler, batch_size, ring),
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers else None,
    )
    return loader, ring


def check_batch(got: tuple[torch.Tensor, Any], expected: tuple[torch.Tensor, Any]) -> None:
    assert torch.equal(got[0], expected[0])
    assert got[1].keys() == expected[1].keys()
    for key in expected[1]:
        assert torch.equal(got[1][key], expected[1][key])


@pytest.mark.parametrize("workers", [0, 2])
def test_the_ring_gives_the_standard_batches_while_consumers_hold_two(workers: int) -> None:
    """Like the trainer: it holds the batch in its step and the one fetched ahead; each held
    view must still hold its batch when released, over two epochs (the second stopped
    early, then a third in full)."""
    dataset, batch_size = KeyedItems(21), 4  # 6 batches, the last of 1
    sampler = SeededShuffleSampler(len(dataset), seed=3)
    loader, ring = ring_loader(dataset, sampler, batch_size, workers, slots=2 * workers + 3)
    for epoch, stop in ((0, None), (1, 2), (2, None)):
        expected = expected_batches(dataset, sampler, batch_size, epoch)
        sampler.set_epoch(epoch)
        held: deque[tuple[int, tuple[torch.Tensor, Any]]] = deque()
        seen = 0
        for position, batch in enumerate(loader):
            assert isinstance(batch, RingBatch)
            held.append((batch.slot, ring.hand_out(batch)))
            if len(held) == 2:
                slot, view = held.popleft()
                check_batch(view, expected[seen])
                ring.release(slot)
                seen += 1
            if position == stop:
                break
        while held:
            slot, view = held.popleft()
            check_batch(view, expected[seen])
            ring.release(slot)
            seen += 1
        assert seen == (len(expected) if stop is None else stop + 1)


def test_slots_are_reused_and_never_handed_out_twice() -> None:
    dataset, batch_size = KeyedItems(40), 2
    sampler = SeededShuffleSampler(len(dataset), seed=0)
    loader, ring = ring_loader(dataset, sampler, batch_size, workers=2, slots=7)
    handed_out: set[int] = set()
    used = []
    for batch in loader:
        assert batch.slot not in handed_out
        handed_out.add(batch.slot)
        ring.hand_out(batch)
        used.append(batch.slot)
        ring.release(batch.slot)
        handed_out.discard(batch.slot)
    assert len(used) == 20 and set(used) <= set(range(7)) and len(set(used)) < len(used)


def test_a_consumer_that_never_releases_gets_one_line_not_a_hang() -> None:
    dataset = KeyedItems(40)
    loader, ring = ring_loader(dataset, SeededShuffleSampler(40), 2, workers=0, slots=3)
    batches = iter(loader)
    for _ in range(3):
        ring.hand_out(next(batches))
    with pytest.raises(EpicArError, match="all 3 slots of the batch ring are in use"):
        next(batches)


def test_items_of_another_shape_are_refused_by_key() -> None:
    ring = BatchRing(2, 2, (1, 3, 4, 4))
    writer = RingWriter(KeyedItems(4), ring.frames)
    with pytest.raises(EpicArError, match=r"item \(1, 5\): frames of shape \[2, 3, 4, 4\], "
                       r"the batch ring holds \[1, 3, 4, 4\]"):  # fmt: skip
        writer[0, [(1, 5)]]
    with pytest.raises(EpicArError, match="at least 2 slots"):
        BatchRing(1, 2, ITEM)


class FakeCopy:
    """Stands in for the CUDA event recorded after a batch's copy to the GPU."""

    def __init__(self) -> None:
        self.done = False
        self.waited = False

    def query(self) -> bool:
        return self.done

    def synchronize(self) -> None:
        self.waited, self.done = True, True


def test_a_slot_being_copied_is_reused_only_once_its_copy_is_done() -> None:
    """Copies on one CUDA stream complete in order: the ring frees slots in release order,
    without waiting while another slot is free, waiting for the oldest copy when none is."""
    ring = BatchRing(3, 1, ITEM)
    slots = [ring.take() for _ in range(3)]
    copies = [FakeCopy() for _ in range(2)]
    for slot, copy in zip(slots[:2], copies, strict=True):
        ring.hand_out(RingBatch(slot, 1, {}))
        ring.release(slot, copy)  # type: ignore[arg-type]
    ring.hand_out(RingBatch(slots[2], 1, {}))
    ring.release(slots[2])  # copied at once (CPU)
    assert ring.take() == slots[2] and not any(copy.waited for copy in copies)
    copies[0].done = True
    assert ring.take() == slots[0] and not copies[0].waited  # completed: no wait
    assert ring.take() == slots[1] and copies[1].waited  # none free: waits for it


def test_a_sampler_of_plain_keys_gets_one_line() -> None:
    writer = RingWriter(KeyedItems(4), BatchRing(2, 2, ITEM).frames)
    with pytest.raises(EpicArError, match=r"indexed by \(slot, keys\), not 3: .*overfit_batches"):
        writer[3]  # type: ignore[index]
