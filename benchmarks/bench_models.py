"""TSM step time: our temporal shift against the naive one, memory formats, AMP.

One run, same model and inputs for all variants, runs interleaved, medians reported:

- the shift alone, forward + backward, on a layer1-sized activation of the batch;
- a training step of TSM-ResNet50 (8 frames, 224x224, batch 2: forward, loss, backward)
  with our shift and with the naive reference (a zero tensor and three slice copies),
  in contiguous and channels-last memory; on CUDA also with bf16 autocast (AMP).

    .venv/bin/python benchmarks/bench_models.py [--device cpu|cuda] [--repeats 5] [--batch 2]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from collections.abc import Callable, Iterator

import torch

from epic_ar.models import InputSpec, ModelConfig, build_model
from epic_ar.models import temporal_shift as shift_module

NAIVE_NOTE = "zeros + three slice copies, autograd through the copies"


@contextlib.contextmanager
def shift_implementation(naive: bool) -> Iterator[None]:
    saved = shift_module.temporal_shift
    if naive:
        shift_module.temporal_shift = shift_module.reference_temporal_shift
    try:
        yield
    finally:
        shift_module.temporal_shift = saved


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved_medians(
    runs: dict[str, Callable[[], None]], repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each run, the runs alternating (after a warm-up each)."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            synchronize(device)
            start = time.perf_counter()
            run()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def shift_runs(device: torch.device, calls: int) -> dict[str, Callable[[], None]]:
    x = torch.randn(16, 256, 56, 56, device=device, requires_grad=True)
    upstream = torch.randn(16, 256, 56, 56, device=device)

    def run(shift: Callable[..., torch.Tensor]) -> Callable[[], None]:
        def go() -> None:
            for _ in range(calls):
                shift(x, 8, 8).backward(upstream)  # type: ignore[no-untyped-call]

        return go

    return {
        "shift ours": run(shift_module.temporal_shift),
        "shift naive": run(shift_module.reference_temporal_shift),
    }


def step_runs(device: torch.device, amp: bool, batch: int) -> dict[str, Callable[[], None]]:
    spec = InputSpec("rgb", frame_count=8)
    model = build_model(ModelConfig(type="TSM", backbone="resnet50", pretrained=None), spec)
    model.to(device).train()
    # one copy per memory format: converting the weights inside a timed step would cost
    models = {
        torch.contiguous_format: model,
        torch.channels_last: copy.deepcopy(model).to(memory_format=torch.channels_last),
    }
    frames = torch.randn(batch, 8, 3, 224, 224, device=device)
    labels = torch.randint(0, 397, (batch,), device=device)
    runs: dict[str, Callable[[], None]] = {}
    formats = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last}
    precisions = [False, True] if amp else [False]
    for format_name, memory_format in formats.items():
        for naive in (False, True):
            for autocast in precisions:

                def step(
                    f: torch.memory_format = memory_format, n: bool = naive, a: bool = autocast
                ) -> None:
                    model = models[f]
                    with (
                        shift_implementation(n),
                        torch.autocast(device.type, torch.bfloat16, enabled=a),
                    ):
                        loss = torch.nn.functional.cross_entropy(model(frames), labels)
                    loss.backward()  # type: ignore[no-untyped-call]
                    model.zero_grad(set_to_none=True)

                name = (
                    f"step {'naive' if naive else 'ours'} {format_name}{' amp' if autocast else ''}"
                )
                runs[name] = step
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2, help="clips per step")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")  # fmt: skip
    calls = 20 if device.type == "cuda" else 3
    shift = interleaved_medians(shift_runs(device, calls), args.repeats, device)
    print(
        f"\ntemporal shift alone, forward + backward, [16, 256, 56, 56] (median of {args.repeats}):"
    )
    for name, seconds in shift.items():
        print(f"  {name:<12} {1000 * seconds / calls:8.2f} ms")
    print(f"  ours / naive: {shift['shift ours'] / shift['shift naive']:.2f} (naive: {NAIVE_NOTE})")
    runs = step_runs(device, amp=device.type == "cuda", batch=args.batch)
    steps = interleaved_medians(runs, args.repeats, device)
    print(
        f"\nTSM-ResNet50 training step, 8 frames 224x224, batch {args.batch} "
        f"(median of {args.repeats}):"
    )
    for name, seconds in steps.items():
        print(f"  {name:<32} {1000 * seconds:9.1f} ms")
    for format_name in ("contiguous", "channels-last"):
        ratio = steps[f"step ours {format_name}"] / steps[f"step naive {format_name}"]
        print(f"  ours / naive, {format_name}: {ratio:.3f}")


if __name__ == "__main__":
    main()
