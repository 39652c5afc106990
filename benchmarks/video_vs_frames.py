"""How far samples read from MP4 videos are from the same samples read from JPEG frames.

Generates synthetic datasets (456x256, as EPIC's frames) in the tar layout and as H.264
videos (`epic-ar synth --layout tar videos`: crf 18, a keyframe every second, from the same
pixels as the JPEGs), then reads every train and validation segment both ways: test mode
(4 frames, centre crops of 224) and train mode with the same seeds (the same crops and
flips), and prints the mean absolute difference in grey levels.

    python benchmarks/video_vs_frames.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from epic_ar.data.dataset import SegmentDataset, build_dataset
from epic_ar.synthetic.dataset import SyntheticConfig, generate_dataset

SPLITS = ("train", "validation")


def sample_errors(frames: SegmentDataset, videos: SegmentDataset, seed: int) -> list[np.ndarray]:
    """Per segment: |frames - video| in grey levels of every pixel of its sample."""
    errors = []
    for index in range(len(frames)):
        key = (index, seed + index) if frames.train else index
        a, b = frames[key][0].numpy(), videos[key][0].numpy()
        errors.append(np.abs(a.astype(np.int16) - b.astype(np.int16)).reshape(-1))
    return errors


def datasets(root: Path, split: str, *, train: bool) -> tuple[SegmentDataset, SegmentDataset]:
    labels = root / "annotations" / f"EPIC_100_{split}.pkl"
    common = {"frame_count": 4, "train": train, "labels": labels}
    frames = build_dataset(root / "frames_tar", "rgb", **common)  # type: ignore[arg-type]
    videos = build_dataset(None, "rgb", videos_dir=root / "videos", **common)  # type: ignore[arg-type]
    return frames, videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="synthetic datasets (seeds 0..N-1)")
    args = parser.parse_args()
    found: dict[str, list[np.ndarray]] = {"test": [], "train": []}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            root = Path(folder) / f"seed{seed}"
            config = SyntheticConfig(
                participants=2, videos_per_participant=2, segments_per_video=4,
                frame_width=456, frame_height=256, min_frames=8, max_frames=16,
                layouts=("tar", "videos"), seed=seed,
            )  # fmt: skip
            generate_dataset(root, config)
            for split in SPLITS:
                for mode in ("test", "train"):
                    frames, videos = datasets(root, split, train=mode == "train")
                    found[mode] += sample_errors(frames, videos, seed=1000 * seed)
    print(f"segments: {len(found['test'])} ({args.seeds} synthetic datasets, 456x256, "
          "H.264 crf 18 against JPEG quality 90)")  # fmt: skip
    for mode, errors in found.items():
        means = [float(e.mean()) for e in errors]
        p99 = [float(np.percentile(e, 99)) for e in errors]
        print(
            f"{mode:>5} mode: mean {np.mean(np.concatenate(errors)):.2f} grey levels, "
            f"worst segment's mean {max(means):.2f}, worst segment's 99th percentile "
            f"{max(p99):.0f}, largest single pixel {max(int(e.max()) for e in errors)}"
        )


if __name__ == "__main__":
    main()
