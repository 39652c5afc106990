"""Gulp storage against gulpio2 (the original project's storage), same frames, same run.

1. Ingest, no resize, one core each: `epic-ar gulp` (from folders and from the tar archives)
   against gulpio2's `GulpIngestor` with an adapter that does what the original project's
   adapter does (open each JPEG with PIL, hand gulpio2 the pixels, which it re-encodes).
2. Reader: random segment, 8 random frame indices; JPEG bytes only, and decoded.
3. Memory: resident size after opening a directory whose metadata describes 70,000
   segments x 250 frames (the data files are left empty: opening reads metadata only).

    .venv/bin/python benchmarks/bench_gulp.py [--segments 60] [--memory-segments 70000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from epic_ar.annotations.labels import read_annotations
from epic_ar.gulp import GulpDirectory
from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.synthetic.dataset import SyntheticConfig, generate_dataset

OUT = Path(__file__).resolve().parent / "out" / "gulp"


class OriginalStyleAdapter:
    """What the original project's RGB adapter does: PIL-open every frame, yield pixels."""

    def __init__(self, frames_root: Path, labels: pd.DataFrame):
        self.root = frames_root
        self.rows: list[dict[str, Any]] = labels.reset_index().to_dict(orient="records")

    def __len__(self) -> int:
        return len(self.rows)

    def iter_data(self, slice_element: slice | None = None) -> Any:
        from gulpio2.utils import resize_images

        for meta in self.rows[slice_element or slice(0, len(self))]:
            folder = self.root / meta["participant_id"] / meta["video_id"]
            paths = [
                str(folder / f"frame_{i:010d}.jpg")
                for i in range(meta["start_frame"], meta["stop_frame"] + 1)
            ]
            frames = list(resize_images(paths, -1))
            meta = {**meta, "frame_size": list(frames[0].shape), "num_frames": len(frames)}
            yield {"meta": meta, "frames": frames, "id": meta["narration_id"]}


def time_runs(function: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_ingest(root: Path, repeats: int) -> dict[str, float]:
    from gulpio2 import GulpIngestor

    labels_path = root / "annotations" / "EPIC_100_train.csv"
    labels = read_annotations(labels_path)
    frames = int((labels["stop_frame"] - labels["start_frame"] + 1).sum())
    counter = iter(range(10**6))

    def ours(layout: str, check: bool = True) -> None:
        frames_root = root / ("frames_folders/rgb" if layout == "folders" else "frames_tar")
        out = OUT / f"ours_{layout}_{next(counter)}"
        run_gulp(GulpJob(frames_root, out, labels_path, "rgb", check_decodes=check))

    def theirs() -> None:
        adapter = OriginalStyleAdapter(root / "frames_folders" / "rgb", labels)
        GulpIngestor(adapter, str(OUT / f"gulpio2_{next(counter)}"), 100, 1)()

    return {
        "frames": frames,
        "ours_folders": frames / time_runs(lambda: ours("folders"), repeats),
        "ours_tar": frames / time_runs(lambda: ours("tar"), repeats),
        # --no-decode-check: the bytes copied after a header check only
        "ours_folders_unchecked": frames / time_runs(lambda: ours("folders", False), repeats),
        "ours_tar_unchecked": frames / time_runs(lambda: ours("tar", False), repeats),
        "gulpio2": frames / time_runs(theirs, repeats),
    }


def bench_reader(directory: Path, reads: int) -> dict[str, float]:
    from gulpio2 import GulpDirectory as Gulpio2Directory

    ours = GulpDirectory(directory)
    raw = Gulpio2Directory(str(directory), jpeg_decoder=lambda jpeg: jpeg)
    decoded = Gulpio2Directory(str(directory))
    rng = random.Random(0)
    queries = []
    for _ in range(reads):
        segment = rng.choice(ours.segment_ids)
        queries.append((segment, sorted(rng.sample(range(ours.num_frames(segment)), 8))))
    result = {}
    for name, read in [
        ("ours_bytes", ours.read_jpegs),
        ("gulpio2_bytes", lambda s, i: raw[s, i]),
        ("ours_decoded", ours.read_frames),
        ("gulpio2_decoded", lambda s, i: decoded[s, i]),
    ]:
        seconds = time_runs(lambda read=read: [read(s, i) for s, i in queries], 3)
        result[name] = reads / seconds
    return result


def write_big_metadata(directory: Path, segments: int, frames: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    per_chunk = 100
    record = 24_000
    for chunk in range(segments // per_chunk):
        meta = {}
        for s in range(per_chunk):
            index = chunk * per_chunk + s
            info = [[(s * frames + f) * record, 0, record] for f in range(frames)]
            meta[f"P{index % 37:02d}_{index // 37:03d}_{index}"] = {
                "frame_info": info,
                "meta_data": [
                    {
                        "narration_id": f"x{index}",
                        "participant_id": "P01",
                        "video_id": "P01_01",
                        "start_frame": 1,
                        "stop_frame": frames,
                        "narration": "take plate",
                        "verb_class": 0,
                        "noun_class": 2,
                        "num_frames": frames,
                        "frame_size": [256, 456, 3],
                    }
                ],
            }
        (directory / f"meta_{chunk}.gmeta").write_bytes(orjson.dumps(meta))
        (directory / f"data_{chunk}.gulp").write_bytes(b"")


MEMORY_PROBE = """
import sys, time
from pathlib import Path
if sys.argv[1] == "ours":
    from epic_ar.gulp import GulpDirectory
else:
    from gulpio2 import GulpDirectory
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
before = rss_mb()  # after the imports: only what opening the directory costs
start = time.perf_counter()
d = GulpDirectory(Path(sys.argv[2]) if sys.argv[1] == "ours" else sys.argv[2])
print(rss_mb() - before, time.perf_counter() - start)
"""


def bench_memory(directory: Path) -> dict[str, tuple[float, float]]:
    result = {}
    for reader in ("ours", "gulpio2"):
        output = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, reader, str(directory)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        result[reader] = (float(output[0]), float(output[1]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=60, help="segments for ingest/reader")
    parser.add_argument("--memory-segments", type=int, default=70_000)
    parser.add_argument("--memory-frames", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import shutil

    shutil.rmtree(OUT, ignore_errors=True)
    root = OUT / "synthetic"
    config = SyntheticConfig(
        participants=4,
        videos_per_participant=2,
        segments_per_video=max(1, args.segments * 10 // 7 // 8),
        min_frames=20,
        max_frames=60,
        layouts=("folders", "tar"),
    )
    generate_dataset(root, config)

    ingest = bench_ingest(root, args.repeats)
    print(
        f"ingest, no resize, 456x256 RGB, {ingest['frames']:.0f} frames, 1 core (median of "
        f"{args.repeats}):"
    )
    names = ("ours_folders", "ours_tar", "ours_folders_unchecked", "ours_tar_unchecked", "gulpio2")
    for name in names:
        print(
            f"  {name:22s} {ingest[name]:8.0f} frames/s "
            f"({ingest[name] / ingest['gulpio2']:.1f}x gulpio2)"
        )

    reader = bench_reader(next(OUT.glob("ours_folders_*")), reads=300)
    print("reader, random segment, 8 frames (median of 3):")
    for name in ("ours_bytes", "gulpio2_bytes", "ours_decoded", "gulpio2_decoded"):
        print(f"  {name:16s} {reader[name]:8.0f} segments/s")
    for kind in ("bytes", "decoded"):
        print(f"  ours / gulpio2, {kind}: {reader[f'ours_{kind}'] / reader[f'gulpio2_{kind}']:.2f}")

    big = OUT / "big_metadata"
    write_big_metadata(big, args.memory_segments, args.memory_frames)
    memory = bench_memory(big)
    print(f"open a directory of {args.memory_segments} segments x {args.memory_frames} frames:")
    for name, (mb, seconds) in memory.items():
        print(f"  {name:8s} +{mb:7.0f} MB resident, {seconds:5.1f} s to open")
    print(f"  ours / gulpio2 memory: {memory['ours'][0] / memory['gulpio2'][0]:.3f}")
    print(f"  gulpio2 / ours time to open: {memory['gulpio2'][1] / memory['ours'][1]:.1f}x")
    frames = args.memory_segments * args.memory_frames
    print(f"  ours: {memory['ours'][0] * 2**20 / frames:.1f} bytes per frame")
    shutil.rmtree(big)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
