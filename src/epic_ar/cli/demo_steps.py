"""The demo's data sizes, where it writes, and its commands, step by step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from epic_ar.annotations.splits import OFFICIAL_STEMS

# The demo's splits as its gulp folders name them, and their annotation files' stems.
SPLITS = {
    "train": OFFICIAL_STEMS["train"],
    "validation": OFFICIAL_STEMS["val"],
    "test": OFFICIAL_STEMS["test"],
}


@dataclass(frozen=True)
class DemoSize:
    """How much data the demo generates and how long it trains."""

    participants: int
    videos_per_participant: int
    segments_per_video: int
    frame_size: tuple[int, int]  # W, H pixels
    frames: tuple[int, int]  # RGB frames per segment, min and max
    verbs: int
    nouns: int
    epochs: int
    lr_step: int  # the epoch at which the learning rate drops tenfold


# About 4 minutes on 2 CPU cores; the models learn the classes (see the README's numbers).
FULL = DemoSize(4, 3, 20, (96, 64), (10, 30), verbs=10, nouns=12, epochs=8, lr_step=6)
# Every step on a few segments, one epoch: checks an installation in a minute and a half
# on a quiet 2-core machine (1:31; 4:18 with both cores busy with other jobs).
QUICK = DemoSize(2, 2, 5, (64, 48), (8, 12), verbs=4, nouns=4, epochs=1, lr_step=1)


@dataclass(frozen=True)
class DemoArtefacts:
    """Where the demo writes everything, under `root`."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def annotations(self) -> Path:
        return self.data / "annotations"

    def labels(self, split: str, modality: str = "rgb") -> Path:
        """The split's annotation file; for flow, the copy with flow frame numbers."""
        suffix = "_flow" if modality == "flow" else ""
        return self.annotations / f"{SPLITS[split]}{suffix}.pkl"

    @property
    def gulp(self) -> Path:
        return self.root / "gulp"

    def run_dir(self, modality: str) -> Path:
        return self.root / "runs" / f"tsn_{modality}"

    def checkpoint(self, modality: str) -> Path:
        return self.run_dir(modality) / "lightning_logs/version_0/checkpoints/last.ckpt"

    def results(self, name: str, split: str) -> Path:
        return self.root / "results" / f"{name}_{split}.pt"

    @property
    def metrics(self) -> Path:
        return self.root / "results" / "fused_val_metrics.json"

    def pictures(self, modality: str) -> Path:
        return self.root / "pictures" / f"{modality}_validation.png"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def submission(self) -> Path:
        return self.root / "submission.zip"

    def video(self, participants: int) -> Path:
        """The MP4 that predict runs on: the unseen (last) participant's 2020-style video."""
        participant = f"P{participants:02d}"
        return self.data / "videos" / participant / "videos" / f"{participant}_102.MP4"

    def prediction(self, suffix: str) -> Path:
        return self.root / "predict" / f"windows{suffix}"

    @property
    def features(self) -> Path:
        """The RULSTM database that the features step writes."""
        return self.root / "features" / "rgb"


@dataclass(frozen=True)
class Step:
    title: str
    args: list[str]  # after `epic-ar`
    # for an `evaluate` step: the model whose val results it scores, e.g. "tsn_rgb" or
    # "fused"; its output (the metrics, `name: value` lines) is shown and also kept for the
    # summary. None: another command, whose output goes straight to the terminal.
    evaluates: str | None = None


def synth_args(art: DemoArtefacts, size: DemoSize) -> list[str]:
    return [
        "synth", str(art.data),
        "--participants", str(size.participants),
        "--videos-per-participant", str(size.videos_per_participant),
        "--segments-per-video", str(size.segments_per_video),
        "--frame-size", *map(str, size.frame_size),
        "--frames", *map(str, size.frames),
        "--verbs", str(size.verbs),
        "--nouns", str(size.nouns),
        "--layout", "tar", "videos",
    ]  # fmt: skip


def train_args(art: DemoArtefacts, size: DemoSize, modality: str) -> list[str]:
    """A small TSN (ResNet-18 from scratch, 4 frames of 64 x 64) on the demo's gulp dirs."""
    return [
        "train", "--config-name", f"tsn_{modality}",
        f"data._root_gulp_dir={art.gulp}",
        # from scratch, so the BatchNorms learn their statistics (no partial BN)
        "model.backbone=resnet18", "model.pretrained=null", "model.partial_bn=false",
        "model.dropout=0.3",
        "data.frame_count=4", "data.preprocessing.input_size=64",
        "data.test_augmentation.rescale_size=64", "data.worker_count=1",
        "learning.batch_size=16", "learning.lr=0.02",
        f"learning.lr_scheduler.epochs=[{size.lr_step}]",
        f"trainer.max_epochs={size.epochs}", "trainer.accelerator=cpu",
        f"hydra.run.dir={art.run_dir(modality)}",
    ]  # fmt: skip


MODALITIES = ("rgb", "flow")
MODELS = ("tsn_rgb", "tsn_flow")  # the results names of the models the demo trains
SCORED_SPLITS = ("val", "test")


def convert_steps(art: DemoArtefacts) -> list[Step]:
    return [
        Step(
            f"flow frame numbers for the {split} labels",
            ["convert-flow-idxs", str(art.labels(split)), str(art.labels(split, "flow"))],
        )
        for split in SPLITS
    ]


def gulp_steps(art: DemoArtefacts) -> list[Step]:
    frames = str(art.data / "frames_tar")
    return [
        Step(
            f"gulp the {modality} frames of the {split} segments",
            [
                "gulp",
                frames,
                str(art.gulp / f"{modality}_{split}"),
                str(art.labels(split, modality)),
                modality,
            ],
        )
        for modality in MODALITIES
        for split in SPLITS
    ]


def show_steps(art: DemoArtefacts) -> list[Step]:
    return [
        Step(
            f"look at 4 random {modality} validation segments",
            [
                "show",
                str(art.gulp / f"{modality}_validation"),
                str(art.pictures(modality)),
                "--random",
                "4",
            ],
        )
        for modality in MODALITIES
    ]


def train_steps(art: DemoArtefacts, size: DemoSize) -> list[Step]:
    return [
        Step(f"train TSN on {modality}", train_args(art, size, modality)) for modality in MODALITIES
    ]


def scoring_steps(art: DemoArtefacts) -> list[Step]:
    return [
        Step(
            f"score the {split} split with the {modality} model",
            [
                "test",
                str(art.checkpoint(modality)),
                str(art.results(f"tsn_{modality}", split)),
                "--split",
                split,
            ],
        )
        for modality in MODALITIES
        for split in SCORED_SPLITS
    ]


def evaluate_step(art: DemoArtefacts, title: str, name: str, *extra: str) -> Step:
    """`epic-ar evaluate` of the val results of `name` (its metrics kept for the summary).

    The default output format, as a user would run it: the demo shows what it prints."""
    args = ["evaluate", str(art.results(name, "val")), str(art.labels("validation"))]
    return Step(title, [*args, *extra], evaluates=name)


def fuse_steps(art: DemoArtefacts) -> list[Step]:
    return [
        Step(
            f"fuse RGB and flow on {split} (mean of scores)",
            [
                "fuse",
                *(str(art.results(name, split)) for name in MODELS),
                str(art.results("fused", split)),
            ],
        )
        for split in SCORED_SPLITS
    ]


# The supervision levels (SLS) of what the demo does: 0, no pre-training (ResNet-18 from
# scratch); 3, full temporal labels (start/stop frames); 3, the train split only.
DEMO_SLS = {"--sls-pt": 0, "--sls-tl": 3, "--sls-td": 3}


def submit_step(art: DemoArtefacts) -> Step:
    levels = [str(part) for flag, level in DEMO_SLS.items() for part in (flag, level)]
    return Step(
        "write the challenge submission from the fused test scores",
        ["submit", str(art.results("fused", "test")), str(art.submission),
         "--labels", str(art.labels("test")), *levels],
    )  # fmt: skip


def predict_step(art: DemoArtefacts, size: DemoSize) -> Step:
    """The RGB model on a whole video; the demo's segments last 0.2-0.6 s, so short windows."""
    return Step(
        "run the RGB model on a whole video, in windows of 0.5 s",
        ["predict", str(art.checkpoint("rgb")), str(art.video(size.participants)),
         "--window", "0.5", "--stride", "0.5", "--top-k", "3",
         "--out", str(art.prediction(".json")), "--timeline", str(art.prediction(".png"))],
    )  # fmt: skip


def features_step(art: DemoArtefacts, size: DemoSize) -> Step:
    """Features of the predict step's video for anticipation models (RULSTM's LMDB)."""
    video = art.video(size.participants).stem
    return Step(
        "write the RGB model's features of that video for RULSTM (30 per second)",
        ["features", str(art.checkpoint("rgb")), str(art.features), "--format", "rulstm-lmdb",
         "--frames-dir", str(art.data / "frames_tar"), "--videos", video],
    )  # fmt: skip


def demo_steps(art: DemoArtefacts, size: DemoSize) -> list[Step]:
    """Every command of the demo, in order."""
    return [
        Step("generate RGB and flow frames and annotations", synth_args(art, size)),
        *convert_steps(art),
        *gulp_steps(art),
        *show_steps(art),
        *train_steps(art, size),
        *scoring_steps(art),
        *(evaluate_step(art, f"evaluate {name} alone on val", name) for name in MODELS),
        *fuse_steps(art),
        evaluate_step(
            art,
            "evaluate the fusion on val: the 12 challenge metrics and a report",
            "fused",
            "--report",
            str(art.report),
        ),
        submit_step(art),
        predict_step(art, size),
        features_step(art, size),
    ]
