"""Training throughput: TSM-RGB (ResNet-50, 8 frames, 224x224) through Lightning, fed by the
real loader, against the same steps fed one preloaded batch (the model-bound ceiling).

Both runs use `ActionRecognitionSystem` and `EpicDataModule` as `epic-ar train` does, over
a gulp directory of 456x256 RGB frames (4:2:0, photo-like texture, decoding at about the
rate of real EPIC-KITCHENS frames). Reported: samples/s of each (steps after a warm-up),
their ratio, and the share of step time spent waiting for data (the time between one
step's end and the next one's start, when Lightning fetches and transfers the batch).

    .venv/bin/python benchmarks/bench_training.py                      # CPU, batch 4
    python benchmarks/bench_training.py --accelerator gpu --batch 64 --workers 14 \\
        --precision bf16-mixed --channels-last
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader

from bench_loader import make_gulp
from epic_ar.data.config import DataConfig
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.data.dataset import JoinedDataset, SeededShuffleSampler
from epic_ar.training.run_config import parse_run_config
from epic_ar.training.system import ActionRecognitionSystem

OUT = Path(__file__).resolve().parent / "out" / "training"
SEGMENTS = 32


class TimedBatches:
    """An iterable over a DataLoader that adds up the time spent waiting in `next()`."""

    def __init__(self, loader: DataLoader[Any], warmup: int):
        self.loader, self.warmup = loader, warmup
        self.sampler = loader.sampler  # Lightning sets the epoch through it
        self.waiting = 0.0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        for index, batch in enumerate(_timed(iter(self.loader), self)):
            yield batch
            if index + 1 == self.warmup:
                self.waiting = 0.0


def _timed(batches: Iterator[Any], timed: TimedBatches) -> Iterator[Any]:
    while True:
        start = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            return
        timed.waiting += time.perf_counter() - start
        yield batch


class StepTimer(Callback):
    """Wall time from the end of the warm-up steps to the end of the last step."""

    def __init__(self, warmup: int, synchronize: bool):
        self.warmup, self.synchronize = warmup, synchronize
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        if self.synchronize:
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())

    def rate(self, batch: int) -> tuple[float, float]:
        """(samples/s, seconds) over the steps after the warm-up."""
        seconds = self.ends[-1] - self.ends[self.warmup - 1]
        return batch * (len(self.ends) - self.warmup) / seconds, seconds


class RepeatedSegments(EpicDataModule):
    """The training segments `repeat` times over in one epoch (each item decoded afresh):
    enough steps from a small gulp directory without epoch boundaries. Its loader is
    timed (`TimedBatches`)."""

    def __init__(self, data: DataConfig, *, batch_size: int, repeat: int, warmup: int):
        super().__init__(data, modality="rgb", batch_size=batch_size, seed=0)
        self.repeat, self.warmup = repeat, warmup
        self.timed: TimedBatches | None = None

    def train_dataloader(self) -> Any:
        joined = JoinedDataset([self.dataset("train", train=True)] * self.repeat)
        loader = self._loader(joined, SeededShuffleSampler(len(joined), seed=self.seed))
        self.timed = TimedBatches(loader, self.warmup)
        return self.timed


class PreloadedBatches(EpicDataModule):
    """The data module's first training batch, served again for every step (no loading)."""

    def train_dataloader(self) -> Any:
        first = next(iter(super().train_dataloader()))
        steps = self.trainer.limit_train_batches if self.trainer else 1
        return SameBatch(first, int(steps))


class SameBatch:
    """One batch, `count` times (not a list: Lightning takes a list for several loaders)."""

    def __init__(self, batch: Any, count: int):
        self.batch, self.count = batch, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Any]:
        return iter([self.batch] * self.count)


def run_config(args: argparse.Namespace, gulp_root: Path) -> dict[str, Any]:
    return {
        "modality": "RGB",
        "seed": 0,
        "data": {
            "train_gulp_dir": str(gulp_root / "rgb_train"),
            "frame_count": 8,
            "segment_length": 1,
            "worker_count": args.workers,
            "pin_memory": args.accelerator == "gpu" and not args.no_pin_memory,
        },
        "model": {
            "type": "TSM",
            "backbone": "resnet50",
            "pretrained": None,
            "channels_last": args.channels_last,
        },
        "learning": {
            "batch_size": args.batch,
            "lr": 0.01,
            "optimizer": {"type": "SGD", "momentum": 0.9, "weight_decay": 5e-4},
        },
        "trainer": {},
    }


def repeated_segments(args: argparse.Namespace, data: DataConfig) -> RepeatedSegments:
    """Enough repeats of the SEGMENTS segments for `args.steps` batches in one epoch."""
    repeat = -(-args.steps * args.batch // SEGMENTS) + 1
    return RepeatedSegments(data, batch_size=args.batch, repeat=repeat, warmup=args.warmup)


def measure(args: argparse.Namespace, gulp_root: Path, preloaded: bool) -> tuple[float, float]:
    """(samples/s, share of the timed steps' wall time spent waiting for batches)."""
    run = parse_run_config(run_config(args, gulp_root))
    torch.manual_seed(0)
    system = ActionRecognitionSystem(run.stored)
    data: EpicDataModule
    if preloaded:
        data = PreloadedBatches(run.data, modality="rgb", batch_size=args.batch, seed=0)
    else:
        data = repeated_segments(args, run.data)
    timer = StepTimer(args.warmup, synchronize=args.accelerator == "gpu")
    trainer = Trainer(
        accelerator=args.accelerator,
        devices=1,
        precision=args.precision,
        max_epochs=1,
        limit_train_batches=args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        use_distributed_sampler=False,
        benchmark=True,
    )
    trainer.fit(system, datamodule=data)
    rate, seconds = timer.rate(args.batch)
    waiting = data.timed.waiting if isinstance(data, RepeatedSegments) and data.timed else 0.0
    return rate, waiting / seconds


def loader_only(args: argparse.Namespace, gulp_root: Path) -> float:
    """Samples/s of the same DataLoader with no model: what the workers can supply."""
    run = parse_run_config(run_config(args, gulp_root))
    batches = iter(repeated_segments(args, run.data).train_dataloader())
    for _ in range(args.warmup):
        next(batches)
    start = time.perf_counter()
    steps = args.steps - args.warmup
    for _ in range(steps):
        next(batches)
    return float(args.batch * steps / (time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--no-pin-memory", action="store_true")
    parser.add_argument("--main-threads", type=int, help="torch threads of the main process")
    args = parser.parse_args()
    if args.main_threads:
        torch.set_num_threads(args.main_threads)
    shutil.rmtree(OUT, ignore_errors=True)
    make_gulp(OUT / "rgb_train", "rgb", SEGMENTS, 60)
    results: dict[str, list[tuple[float, float]]] = {"loader": [], "preloaded": []}
    for _ in range(args.repeats):  # alternating, so slow phases hit both alike
        results["loader"].append(measure(args, OUT, preloaded=False))
        results["preloaded"].append(measure(args, OUT, preloaded=True))
    device = torch.cuda.get_device_name() if args.accelerator == "gpu" else "CPU"
    print(f"TSM-RGB ResNet-50, 8x3x224x224, batch {args.batch}, {args.workers} workers, "
          f"{args.precision}{', channels-last' if args.channels_last else ''}, {device}, "
          f"pin_memory {not args.no_pin_memory}, main threads {torch.get_num_threads()}, "
          f"{args.steps - args.warmup} timed steps, median of {args.repeats}:")  # fmt: skip
    for name, runs in results.items():
        print(f"  {name} per repeat: " + ", ".join(f"{rate:.1f}" for rate, _ in runs))
    rates = {name: statistics.median(rate for rate, _ in runs) for name, runs in results.items()}
    waits = {name: statistics.median(w for _, w in runs) for name, runs in results.items()}
    print(f"  real loader:       {rates['loader']:8.1f} samples/s, "
          f"{100 * waits['loader']:.1f}% of the time waiting for batches")  # fmt: skip
    print(f"  preloaded batch:   {rates['preloaded']:8.1f} samples/s")
    print(f"  loader / preloaded: {rates['loader'] / rates['preloaded']:.2f}")
    print(f"  the loader alone (no model): {loader_only(args, OUT):.1f} samples/s")


if __name__ == "__main__":
    main()
