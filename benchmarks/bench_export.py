"""`epic-ar export` on the published RGB models: export time, the graph, and ONNX Runtime's
latency against PyTorch's on the same inputs, in one run.

For each of TSN, TRN and TSM (the published RGB configs: ResNet-50, 224x224 crops, random
weights in the published file layout):

- `export_onnx` with its defaults (dynamic batch, parity check with ONNX Runtime at batch
  1 and 3 included): wall time, file size, the largest difference it measured, and the
  graph's node counts (Conv, Slice, Concat, ScatterND) and every operator it holds;
- latency of one clip ([1, T, 3, 224, 224] float32; T the test frame count: TSN 25, TRN
  and TSM 8) through PyTorch eager (fp32,
  `inference_mode`, the process's default threads) and through ONNX Runtime's CPU
  provider (default session options) on the same input, the two alternating within
  each repeat; medians over `--repeats`, and the median of the per-repeat ratios
  (PyTorch time / ONNX Runtime time: above 1 means ONNX Runtime is faster).

    .venv/bin/python benchmarks/bench_export.py [--repeats 5] [--models tsn_rgb trn_rgb tsm_rgb]

About 3 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch

from bench_features_runs import published_checkpoint
from epic_ar.export.onnx import ExportOptions, export_onnx, logits_module
from epic_ar.models.checkpoint import load_checkpoint

OPERATORS = ("Conv", "Slice", "Concat", "ScatterND")


def timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(name: str, folder: Path, repeats: int) -> list[str]:
    """The table row of the published `name`."""
    checkpoint = published_checkpoint(folder / f"{name}.ckpt", name)
    out = folder / f"{name}.onnx"
    start = time.perf_counter()
    report = export_onnx(checkpoint, out)
    export_seconds = time.perf_counter() - start
    nodes = Counter(node.op_type for node in onnx.load(str(out)).graph.node)

    model, config = load_checkpoint(checkpoint)
    module, shape, _ = logits_module(model, config, ExportOptions())
    frames = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feed = {"frames": frames.numpy()}

    def eager() -> None:
        with torch.inference_mode():
            module(frames)

    def runtime() -> None:
        session.run(["verb", "noun"], feed)

    eager()  # warm-up: allocations, ONNX Runtime's first-run planning
    runtime()
    eager_times, runtime_times = [], []
    for _ in range(repeats):
        eager_times.append(timed(eager))
        runtime_times.append(timed(runtime))
    ratio = statistics.median(e / r for e, r in zip(eager_times, runtime_times, strict=True))
    with torch.inference_mode():
        expected = np.concatenate([o.numpy() for o in module(frames)], axis=1)
    got = np.concatenate(session.run(["verb", "noun"], feed), axis=1)
    print(f"{name}: exported in {export_seconds:.1f} s, eager {statistics.median(eager_times):.3f}"
          f" s, ONNX Runtime {statistics.median(runtime_times):.3f} s, "
          f"difference {np.abs(got - expected).max():.2g}")  # fmt: skip
    print(f"{name} operators: {', '.join(sorted(nodes))}")
    return [
        name,
        str(shape[1]),
        f"{export_seconds:.0f} s",
        f"{out.stat().st_size / 2**20:.0f} MiB",
        f"{report.max_difference:.1g} (of {report.scale:.2g})",
        " / ".join(str(nodes[op]) for op in OPERATORS),
        f"{statistics.median(eager_times) * 1000:.0f} ms",
        f"{statistics.median(runtime_times) * 1000:.0f} ms",
        f"{ratio:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["tsn_rgb", "trn_rgb", "tsm_rgb"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime "
          f"{onnxruntime.__version__}, {torch.get_num_threads()} torch threads")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, Path(tmp), args.repeats) for name in args.models]
    header = ["model", "T", "export (incl. check)", "file", "parity check: largest difference",
              " / ".join(OPERATORS), "PyTorch, 1 clip", "ONNX Runtime, 1 clip",
              "PyTorch / ONNX Runtime"]  # fmt: skip
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nmedians of {args.repeats} alternating repeats; ratio: median of per-repeat ratios")


if __name__ == "__main__":
    main()
