"""Training options that change how a step runs, not what it learns or stores: bf16 mixed
precision, channels-last memory, torch.compile, the batch ring and decoding on the device,
each one training step on the CPU against a plain step from the same start."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_module
from torch import nn

from epic_ar.data.config import DataConfig
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.models.checkpoint_file import read_checkpoint
from epic_ar.synthetic.dataset import SyntheticConfig
from epic_ar.training.run_config import plain_run_config
from epic_ar.training.system import ActionRecognitionSystem
from epic_ar.training.train import train
from helpers.gulp_data import make_synthetic_data

DATA = SyntheticConfig(
    participants=2,
    videos_per_participant=1,
    segments_per_video=6,
    frame_width=64,
    frame_height=48,
    min_frames=4,
    max_frames=8,
    layouts=("tar",),
    seed=7,
)
State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Step:
    """One training step's outcome: the checkpoint's state dict and the logged loss."""

    state: State
    loss: float
    config: dict[str, Any]


@pytest.fixture(scope="module")
def gulp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/rgb_{train,validation}: gulp directories of a tiny synthetic dataset."""
    data = make_synthetic_data(tmp_path_factory.mktemp("options_data"), DATA)
    root = data.root / "gulp"
    for split in ("train", "validation"):
        run_gulp(GulpJob(data.frames("tar", "rgb"), root / f"rgb_{split}",
                         data.labels("rgb", split), "rgb"))  # fmt: skip
    return root


def one_step(gulp_root: Path, run_dir: Path, *extra: str) -> Step:
    """Train TSN (ResNet-18 from scratch, 2 frames of 32x32, batch 4) for one step."""
    overrides = [
        f"data._root_gulp_dir={gulp_root}",
        "model.backbone=resnet18",
        "model.pretrained=null",
        "data.preprocessing.input_size=32",
        "data.frame_count=2",
        "data.worker_count=0",
        "learning.batch_size=4",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=0",
        "+trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false",
        *extra,
    ]
    with initialize_config_module("epic_ar.configs", version_base="1.3"):
        config = plain_run_config(compose("tsn_rgb", overrides))
    outcome = train(config, run_dir)
    assert outcome.last_checkpoint is not None
    state = read_checkpoint(outcome.last_checkpoint)["state_dict"]
    return Step(state, outcome.metrics["train/loss_step"], config)


@pytest.fixture(scope="module")
def plain(gulp_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Step:
    return one_step(gulp_root, tmp_path_factory.mktemp("plain"))


def initial_state(config: dict[str, Any]) -> State:
    """The weights every run starts from: `train` seeds torch with the run's seed, then
    builds the model (no pretrained weights here)."""
    torch.manual_seed(config["seed"])
    model = ActionRecognitionSystem(config).model
    return {f"model.{key}": value for key, value in model.state_dict().items()}


def changed_keys(before: State, after: State) -> set[str]:
    return {key for key, value in before.items() if not torch.equal(value, after[key])}


def update(before: State, after: State) -> torch.Tensor:
    """Everything a step changed, as one float64 vector."""
    return torch.cat(
        [(after[key].double() - value.double()).flatten()
         for key, value in before.items() if value.is_floating_point()]
    )  # fmt: skip


def test_a_plain_step_changes_what_trains_and_nothing_else(plain: Step) -> None:
    # Partial BN: the optimiser updates the trainable parameters, and only the first
    # BatchNorm (in training mode) updates its running statistics.
    model = ActionRecognitionSystem(plain.config).model.train()
    trainable = {f"model.{name}" for name, p in model.named_parameters() if p.requires_grad}
    norms = [name for name, module in model.named_modules() if isinstance(module, nn.BatchNorm2d)]
    assert norms[0] == "base_model.bn1" and len(norms) == 20
    first_statistics = {
        f"model.base_model.bn1.{name}"
        for name in ("running_mean", "running_var", "num_batches_tracked")
    }
    assert math.isfinite(plain.loss)
    assert changed_keys(initial_state(plain.config), plain.state) == trainable | first_statistics
    # values set at build time whatever the seed: they moved
    assert not torch.equal(plain.state["model.base_model.bn1.weight"], torch.ones(64))
    assert plain.state["model.new_fc.bias"].abs().sum() > 0


# (override, how close the step's update must be to the plain step's: cosine similarity)
OPTIONS = [
    pytest.param("trainer.precision=bf16-mixed", 0.999, id="bf16-mixed"),  # measured 0.99998
    pytest.param("model.channels_last=true", 0.99999, id="channels_last"),  # the same sums
    # JPEGs decoded, cropped and resized by the main process: pixels within a grey level
    pytest.param("data.decode=gpu", 0.999, id="decode-on-device"),
    # Compiled dropout draws other masks (inductor's generator): measured 0.985-0.9996.
    # Inductor compiles the forward and backward graphs with gcc: 170 s with a cold cache
    # on 2 busy cores, 10-50 s once its cache (/tmp/torchinductor_<user>) holds them.
    pytest.param("model.compile=true", 0.9, id="compile", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("override", "similarity"), OPTIONS)
def test_option_trains_a_step_like_the_plain_one(
    gulp_root: Path, tmp_path: Path, plain: Step, override: str, similarity: float
) -> None:
    step = one_step(gulp_root, tmp_path / "run", override)
    start = initial_state(plain.config)
    assert math.isfinite(step.loss)
    assert step.loss == pytest.approx(plain.loss, rel=0.01)
    # the checkpoint: same keys (torch.compile in place, no `_orig_mod.`), dtypes, shapes
    assert list(step.state) == list(plain.state)
    for key, value in plain.state.items():
        assert (step.state[key].dtype, step.state[key].shape) == (value.dtype, value.shape), key
    # the step: the same weights changed, in (nearly) the same direction
    assert changed_keys(start, step.state) == changed_keys(start, plain.state)
    ours, theirs = update(start, step.state), update(start, plain.state)
    assert torch.nn.functional.cosine_similarity(ours, theirs, dim=0) > similarity
    if override.startswith("model.channels_last"):  # the same arithmetic, reordered
        assert step.loss == pytest.approx(plain.loss, rel=1e-5)
        for key, value in plain.state.items():
            assert torch.allclose(step.state[key].double(), value.double(), atol=1e-5), key


def test_the_batch_ring_loads_the_standard_batches(gulp_root: Path) -> None:
    """Through EpicDataModule's hooks, as the trainer calls them: the same normalised
    frames and labels, batch by batch, over two epochs."""
    data = DataConfig(train_gulp_dir=str(gulp_root / "rgb_train"), worker_count=0, frame_count=2)
    data = replace(data, preprocessing=replace(data.preprocessing, input_size=32))
    epochs: dict[bool, list[tuple[torch.Tensor, Any]]] = {}
    for ring in (False, True):
        module = EpicDataModule(replace(data, batch_ring=ring), modality="rgb", batch_size=2)
        loader = module.train_dataloader()
        epochs[ring] = []
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
            for batch in loader:
                batch = module.on_before_batch_transfer(batch, 0)
                frames, metadata = module.on_after_batch_transfer(batch, 0)
                epochs[ring].append((frames, metadata))
    assert len(epochs[True]) == len(epochs[False]) >= 4
    for (ours, our_metadata), (theirs, their_metadata) in zip(
        epochs[True], epochs[False], strict=True
    ):
        assert torch.equal(ours, theirs)
        assert torch.equal(our_metadata["verb_class"], their_metadata["verb_class"])
        assert our_metadata["narration_id"] == their_metadata["narration_id"]


def test_the_batch_ring_trains_the_plain_step(gulp_root: Path, tmp_path: Path, plain: Step) -> None:
    step = one_step(gulp_root, tmp_path / "run", "data.batch_ring=true")
    assert step.loss == pytest.approx(plain.loss, rel=1e-6)
    assert list(step.state) == list(plain.state)
    # The same batch values; without workers the standard loader stacks the items in their
    # channels-last memory order, the ring stores them contiguously (as the standard loader
    # does with workers), so the convolutions add in another order: 1-ulp differences.
    for key, value in plain.state.items():
        assert torch.allclose(step.state[key], value, rtol=1e-6, atol=1e-7), key
