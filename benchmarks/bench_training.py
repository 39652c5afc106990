"""Training throughput: TSM (ResNet-50, 8 frames, 224x224; RGB, or `--modality flow`: 8
snippets of 5 u/v pairs) through Lightning, fed by the real loader, against the same steps
fed one preloaded batch (the model-bound ceiling).

Every run uses `ActionRecognitionSystem` and `EpicDataModule` as `epic-ar train` does, over
a gulp directory of 456x256 frames (RGB with 4:2:0 chroma, or grey flow frames; photo-like
texture, decoding at about the rate of real EPIC-KITCHENS frames), alternating within each
repeat:

- loader: the standard loader (each batch collated into new shared memory, pinned by
  the DataLoader's thread on CUDA);
- ring: the same loader through the batch ring (`data.batch_ring=true`: preallocated
  shared slots, pinned once);
- decode on device: the workers ship JPEG bytes and the main process decodes, crops and
  resizes each batch on the device (`data.decode=gpu`; nvJPEG on CUDA);
- preloaded: the first batch served again for every step (the model-bound ceiling);
- preloaded, fresh shared copies: the same batch, copied into new shared memory before
  each step (the standard loader's per-batch allocation and first touches, without the
  decoding).

Reported per run: samples/s of the steps after a warm-up and its ratio to preloaded; the
share of step time spent waiting for data (between one step's end and the next one's
start); the main process's minor page faults per timed step; CPU cores busy (the main
process's and its workers' CPU time over the fit's wall time); the main process's resident
memory at the last step. `--profile DIR` also writes, for one timed step of each run, torch's
profiler table (CPU, and CUDA on a GPU) to DIR/<run>.txt.

    .venv/bin/python benchmarks/bench_training.py                      # CPU, batch 4
    python benchmarks/bench_training.py --accelerator gpu --batch 64 --workers 14 \\
        --precision bf16-mixed --channels-last --repeats 3 --profile profiles
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import yaml  # type: ignore[import-untyped]  # PyYAML (through hydra); no stubs installed
from lightning import Callback, LightningModule, Trainer
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader

from bench_loader import make_gulp
from epic_ar.data.config import DataConfig
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.data.dataset import JoinedDataset, SeededShuffleSampler
from epic_ar.modality import Modality
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
    """Wall time from the end of the warm-up steps to the end of the last step, the main
    process's minor page faults over the same steps, and (with `profile_to`) torch's
    profiler table of the first timed step."""

    def __init__(self, warmup: int, synchronize: bool, profile_to: Path | None = None):
        self.warmup, self.synchronize, self.profile_to = warmup, synchronize, profile_to
        self.ends: list[float] = []
        self.faults: list[int] = []
        self.resident_mb = 0.0
        self.profiler: profile | None = None

    def on_train_batch_start(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        if self.profile_to is not None and len(self.ends) == self.warmup:
            activities = [ProfilerActivity.CPU]
            if self.synchronize:
                activities.append(ProfilerActivity.CUDA)
            self.profiler = profile(activities=activities)
            self.profiler.start()

    def on_train_batch_end(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        if self.synchronize:
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())
        self.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
        self.resident_mb = resident_mb()
        if self.profiler is not None and self.profile_to is not None:
            self.profiler.stop()
            sort = "self_cuda_time_total" if self.synchronize else "self_cpu_time_total"
            table = self.profiler.key_averages().table(sort_by=sort, row_limit=25)
            self.profile_to.write_text(table)
            self.profiler = None

    def rate(self, batch: int) -> tuple[float, float]:
        """(samples/s, seconds) over the steps after the warm-up."""
        seconds = self.ends[-1] - self.ends[self.warmup - 1]
        return batch * (len(self.ends) - self.warmup) / seconds, seconds

    def faults_per_step(self) -> float:
        return (self.faults[-1] - self.faults[self.warmup - 1]) / (len(self.ends) - self.warmup)


@dataclass(frozen=True)
class Outcome:
    """One run: samples/s, share of step time waiting for batches, minor page faults per
    step (main process), CPU cores busy over the fit, resident memory of the main process
    at the last step (MB)."""

    rate: float
    waiting: float
    faults: float
    cores: float
    resident_mb: float


class RepeatedSegments(EpicDataModule):
    """The training segments `repeat` times over in one epoch (each item decoded afresh):
    enough steps from a small gulp directory without epoch boundaries. Its loader is
    timed (`TimedBatches`)."""

    def __init__(
        self, data: DataConfig, *, modality: Modality, batch_size: int, repeat: int, warmup: int
    ):
        super().__init__(data, modality=modality, batch_size=batch_size, seed=0)
        self.repeat, self.warmup = repeat, warmup
        self.timed: TimedBatches | None = None

    def train_dataloader(self) -> Any:
        joined = JoinedDataset([self.dataset("train", train=True)] * self.repeat)
        loader = self.training_loader(joined, SeededShuffleSampler(len(joined), seed=self.seed))
        self.timed = TimedBatches(loader, self.warmup)
        return self.timed


class PreloadedBatches(EpicDataModule):
    """The data module's first training batch, served again for every step (no loading)."""

    def train_dataloader(self) -> Any:
        first = next(iter(super().train_dataloader()))
        steps = self.trainer.limit_train_batches if self.trainer else 1
        return SameBatch(first, int(steps))


class PreloadedFreshCopies(EpicDataModule):
    """The first training batch, copied into new shared memory before every step."""

    def train_dataloader(self) -> Any:
        first = next(iter(super().train_dataloader()))
        steps = self.trainer.limit_train_batches if self.trainer else 1
        return SameBatch(first, int(steps), fresh_copies=True)


class SameBatch:
    """One batch, `count` times (not a list: Lightning takes a list for several loaders);
    with `fresh_copies`, its frames copied into new shared memory each time, as a worker's
    collation allocates it."""

    def __init__(self, batch: Any, count: int, fresh_copies: bool = False):
        self.batch, self.count, self.fresh_copies = batch, count, fresh_copies

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Any]:
        frames, metadata = self.batch
        for _ in range(self.count):
            if self.fresh_copies:
                copy = torch.empty_like(frames).share_memory_()  # type: ignore[no-untyped-call]
                yield copy.copy_(frames), metadata
            else:
                yield self.batch


def input_settings(modality: str) -> dict[str, Any]:
    """`data.preprocessing` and `data.train_augmentation` of the packaged input config
    (configs/input/<modality>.yaml: flow's one mean and std, and its crop scales), as
    `epic-ar train` takes them."""
    text = (resources.files("epic_ar.configs") / "input" / f"{modality}.yaml").read_text()
    data = yaml.safe_load(text)["data"]
    return {key: data[key] for key in ("preprocessing", "train_augmentation")}


def run_config(
    args: argparse.Namespace, gulp_root: Path, ring: bool = False, on_device: bool = False
) -> dict[str, Any]:
    return {
        "modality": "RGB" if args.modality == "rgb" else "Flow",
        "seed": 0,
        "data": {
            "train_gulp_dir": str(gulp_root / f"{args.modality}_train"),
            "frame_count": 8,
            "segment_length": 1 if args.modality == "rgb" else 5,
            "worker_count": args.workers,
            "pin_memory": args.accelerator == "gpu" and not args.no_pin_memory,
            "batch_ring": ring,
            "decode": "gpu" if on_device else "cpu",
            **input_settings(args.modality),
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
    return RepeatedSegments(
        data, modality=args.modality, batch_size=args.batch, repeat=repeat, warmup=args.warmup
    )


RUNS = ("loader", "ring", "decode on device", "preloaded", "preloaded, fresh shared copies")


def measure(args: argparse.Namespace, gulp_root: Path, name: str) -> Outcome:
    """One run of `RUNS`."""
    run = parse_run_config(
        run_config(args, gulp_root, ring=name == "ring", on_device=name == "decode on device")
    )
    torch.manual_seed(0)
    system = ActionRecognitionSystem(run.stored)
    data: EpicDataModule
    if name == "preloaded":
        data = PreloadedBatches(run.data, modality=args.modality, batch_size=args.batch, seed=0)
    elif name.startswith("preloaded"):
        data = PreloadedFreshCopies(run.data, modality=args.modality, batch_size=args.batch, seed=0)
    else:
        data = repeated_segments(args, run.data)
    profile_to = None
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        profile_to = args.profile / f"{name.replace(', ', '_').replace(' ', '_')}.txt"
    timer = StepTimer(args.warmup, args.accelerator == "gpu", profile_to)
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
    before, start = cpu_seconds(), time.perf_counter()
    trainer.fit(system, datamodule=data)
    cores = (cpu_seconds() - before) / (time.perf_counter() - start)
    rate, seconds = timer.rate(args.batch)
    waiting = data.timed.waiting if isinstance(data, RepeatedSegments) and data.timed else 0.0
    return Outcome(rate, waiting / seconds, timer.faults_per_step(), cores, timer.resident_mb)


def resident_mb() -> float:
    """This process's resident memory now, in MB (Linux: /proc/self/statm)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the DataLoader workers,
    joined when the fit ends)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


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
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--modality", choices=["rgb", "flow"], default="rgb")
    parser.add_argument("--profile", type=Path, help="write profiler tables to this folder")
    args = parser.parse_args()
    if args.main_threads:
        torch.set_num_threads(args.main_threads)
    shutil.rmtree(OUT, ignore_errors=True)
    make_gulp(OUT / f"{args.modality}_train", args.modality, SEGMENTS, 60)
    results: dict[str, list[Outcome]] = {name: [] for name in args.runs}
    for _ in range(args.repeats):  # alternating, so slow phases hit every run alike
        for name in args.runs:
            results[name].append(measure(args, OUT, name))
    device = torch.cuda.get_device_name() if args.accelerator == "gpu" else "CPU"
    shape = "8x3x224x224" if args.modality == "rgb" else "8x10x224x224"
    print(f"TSM-{args.modality} ResNet-50, {shape}, batch {args.batch}, {args.workers} workers, "
          f"{args.precision}{', channels-last' if args.channels_last else ''}, {device}, "
          f"pin_memory {not args.no_pin_memory}, main threads {torch.get_num_threads()}, "
          f"{args.steps - args.warmup} timed steps, median of {args.repeats}:")  # fmt: skip
    print("| run | samples/s | / preloaded | waiting for batches | page faults per step (main) "
          "| CPU cores busy | resident memory, main, at the last step (MB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    baseline = results.get("preloaded")
    for name, runs in results.items():
        rate = statistics.median(o.rate for o in runs)
        ratio = (
            f"{statistics.median(o.rate / b.rate for o, b in zip(runs, baseline, strict=True)):.2f}"
            if baseline else ""
        )  # fmt: skip
        print(f"| {name} | {rate:.1f} | {ratio} | "
              f"{100 * statistics.median(o.waiting for o in runs):.1f}% | "
              f"{statistics.median(o.faults for o in runs):,.0f} | "
              f"{statistics.median(o.cores for o in runs):.2f} | "
              f"{statistics.median(o.resident_mb for o in runs):,.0f} |")  # fmt: skip
    per_repeat = [f"{name} " + ", ".join(f"{o.rate:.1f}" for o in runs)
                  for name, runs in results.items()]  # fmt: skip
    print("per repeat, samples/s: " + "; ".join(per_repeat))
    print(f"the loader alone (no model): {loader_only(args, OUT):.1f} samples/s")
    if args.profile is not None:
        print(f"profiler tables of one timed step of each run: {args.profile}/")


if __name__ == "__main__":
    main()
