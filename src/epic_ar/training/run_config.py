"""A training run's configuration: the resolved Hydra config as plain dicts, checked.

The keys are the original project's (`data.*`, `model.*`, `learning.*`, `trainer.*`); the
original's Lightning 0.9 names (`trainer.gpus`, `+trainer.resume_from_checkpoint`,
`distributed_backend`, ...) are translated by `epic_ar.compat.lightning_config` before they
are checked here. Every check runs before any work starts and fails with one `EpicArError`
line naming the key.
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from epic_ar.annotations.splits import Split
from epic_ar.compat.lightning_config import translate_trainer_arguments
from epic_ar.configs.names import no_run_config
from epic_ar.data.config import (
    DataConfig,
    Preprocessing,
    TestAugmentation,
    TrainAugmentation,
    split_labels,
)
from epic_ar.errors import EpicArError
from epic_ar.gulp.format import committed_chunks
from epic_ar.modality import Modality, config_modality, config_spelling, parse_modality
from epic_ar.models.config import (
    TRAINING_KEYS,
    ModelConfig,
    check_pretrained,
    check_temporal_pool,
    model_config_from_dict,
)
from epic_ar.models.video_model import InputSpec
from epic_ar.training.trainer_types import check_trainer_types

OPTIMIZERS = ("SGD", "Adam", "AdamW")
# `learning.lr_scheduler.type`. "StepLR" is the original project's name for its schedule, which
# multiplies the rate by gamma at each epoch of a list (`epochs`): that is torch's MultiStepLR
# (torch's own StepLR steps every `step_size` epochs), built for both names (training/system.py).
# None: a constant rate.
LR_SCHEDULERS = ("StepLR", "MultiStepLR", None)
GULP_ROOT_KEY = "_root_gulp_dir"  # `data.*`: the folder holding the split gulp directories
SPLIT_GULP_KEYS = ("train_gulp_dir", "val_gulp_dir", "test_gulp_dir")


@dataclass(frozen=True)
class LearningConfig:
    """`learning.*`: the global batch size (split between processes) and the optimiser."""

    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    scheduler: str | None
    gamma: float
    milestones: tuple[int, ...]  # epochs at which the learning rate is multiplied by gamma


@dataclass(frozen=True)
class ModelInit:
    """How the model starts: `weights` (a state dict or checkpoint) wins over `pretrained`."""

    weights: str | None
    weights_strict: bool
    channels_last: bool
    compile: bool


@dataclass(frozen=True)
class RunConfig:
    modality: Modality
    seed: int
    data: DataConfig
    model: ModelConfig
    init: ModelInit
    learning: LearningConfig
    trainer: dict[str, Any]  # Lightning 2 Trainer arguments
    resume: str | None  # a checkpoint path, "auto", or None
    stored: dict[str, Any]  # what checkpoints keep under `hyper_parameters`

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(
            self.modality,
            frame_count=self.data.frame_count,
            segment_length=self.data.segment_length,
        )


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EpicArError(f"{name}: expected a mapping of keys, got {value!r}")
    return dict(value)


def _dataclass_from(cls: type[Any], values: dict[str, Any], source: str) -> Any:
    known = {field.name for field in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise EpicArError(f"{source}: unknown keys {unknown}; known: {sorted(known)}")
    return cls(**values)


def parse_data_config(values: dict[str, Any]) -> DataConfig:
    """`data.*` (plain dicts) → DataConfig, unknown keys refused."""
    nested = {
        "preprocessing": Preprocessing,
        "train_augmentation": TrainAugmentation,
        "test_augmentation": TestAugmentation,
    }
    for key, cls in nested.items():
        if key in values:
            values[key] = _dataclass_from(cls, _section(values, key), f"data.{key}")
    data: DataConfig = _dataclass_from(DataConfig, values, "data")
    for key in ("frame_count", "segment_length", "worker_count"):
        minimum = 0 if key == "worker_count" else 1
        if key == "segment_length" and data.segment_length is None:
            continue  # the modality's default snippet length
        if not isinstance(getattr(data, key), int) or getattr(data, key) < minimum:
            raise EpicArError(f"data.{key}: {getattr(data, key)!r} is not an integer >= {minimum}")
    data.label_frame_numbers = parse_modality(data.label_frame_numbers, "data.label_frame_numbers:")
    if data.decode not in ("cpu", "gpu"):
        raise EpicArError(f"data.decode: {data.decode!r} is not one of 'cpu', 'gpu'")
    return data


def parse_learning_config(values: dict[str, Any]) -> LearningConfig:
    optimizer = _section(values, "optimizer")
    scheduler = _section(values, "lr_scheduler")
    batch_size = values.get("batch_size")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise EpicArError(f"learning.batch_size: {batch_size!r} is not a positive integer")
    optimizer_type = optimizer.get("type", "SGD")
    if optimizer_type not in OPTIMIZERS:
        raise EpicArError(f"learning.optimizer.type: {optimizer_type!r} is not one of {OPTIMIZERS}")
    scheduler_type = scheduler.get("type")
    if scheduler_type not in LR_SCHEDULERS:
        raise EpicArError(
            f"learning.lr_scheduler.type: {scheduler_type!r} is not one of {LR_SCHEDULERS}"
        )
    milestones = scheduler.get("epochs", [])
    if not isinstance(milestones, list) or not all(isinstance(m, int) for m in milestones):
        raise EpicArError(f"learning.lr_scheduler.epochs: {milestones!r} is not a list of epochs")
    return LearningConfig(
        batch_size=batch_size,
        optimizer=str(optimizer_type),
        lr=_number(values.get("lr", 0.01), "learning.lr"),
        momentum=_number(optimizer.get("momentum", 0.0), "learning.optimizer.momentum"),
        weight_decay=_number(optimizer.get("weight_decay", 0.0), "learning.optimizer.weight_decay"),
        scheduler=scheduler_type,
        gamma=_number(scheduler.get("gamma", 0.1), "learning.lr_scheduler.gamma"),
        milestones=tuple(sorted(milestones)),
    )


def _number(value: Any, key: str) -> float:
    """A finite, non-negative number from the config (`key` names it in the error)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EpicArError(f"{key}: {value!r} is not a number")
    if not math.isfinite(value) or value < 0:
        raise EpicArError(f"{key}: {value!r} is not a finite number >= 0")
    return float(value)


def trainer_arguments(values: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """`trainer.*` → (Lightning 2 Trainer arguments, `resume_from_checkpoint` if given).

    The original's names are translated first (`translate_trainer_arguments`: `gpus: N`
    becomes `devices: N` on GPUs); unknown arguments are refused by name.
    """
    from lightning import Trainer

    translated, resume = translate_trainer_arguments(values)
    accepted = set(inspect.signature(Trainer.__init__).parameters) - {"self"}
    reserved = {"logger", "callbacks", "default_root_dir", "use_distributed_sampler"}
    for key in sorted(translated):
        if key in reserved:
            raise EpicArError(f"trainer.{key}: set by epic-ar train; remove it")
        if key not in accepted:
            raise EpicArError(f"trainer.{key}: not an argument of Lightning's Trainer")
    check_trainer_types(translated)
    return translated, resume


def parse_run_config(config: dict[str, Any]) -> RunConfig:
    """Check a resolved run config (plain dicts, as `OmegaConf.to_container` gives)."""
    config = copy.deepcopy(config)
    modality = config_modality(config.get("modality"), "modality:")
    config["modality"] = config_spelling(modality)  # as the original writes it, in checkpoints
    seed = config.get("seed", 0)
    if not isinstance(seed, int):
        raise EpicArError(f"seed: {seed!r} is not an integer")
    model_values = _section(config, "model")
    training_keys = {key: model_values.pop(key, None) for key in TRAINING_KEYS}
    model = model_config_from_dict(model_values)
    init = ModelInit(
        weights=str(training_keys["weights"]) if training_keys["weights"] else None,
        weights_strict=bool(training_keys["weights_strict"] is not False),
        channels_last=bool(training_keys["channels_last"]),
        compile=bool(training_keys["compile"]),
    )
    data = parse_data_config(_section(config, "data"))
    learning = parse_learning_config(_section(config, "learning"))
    trainer, old_resume = trainer_arguments(_section(config, "trainer"))
    resume = config.get("resume")
    if old_resume is not None:
        if resume is not None:
            raise EpicArError("set resume or trainer.resume_from_checkpoint, not both")
        resume = old_resume
    run = RunConfig(
        modality=modality,
        seed=seed,
        data=data,
        model=model,
        init=init,
        learning=learning,
        trainer=trainer,
        resume=str(resume) if resume is not None else None,
        stored=_stored_config(config, trainer),
    )
    check_combinations(run)
    return run


def _stored_config(config: dict[str, Any], trainer: dict[str, Any]) -> dict[str, Any]:
    """The config checkpoints keep: as given, with today's trainer keys, without `resume`."""
    stored = {key: value for key, value in config.items() if key != "resume"}
    stored["trainer"] = trainer
    return stored


def check_combinations(run: RunConfig) -> None:
    """Settings that cannot work together (one line each)."""
    model, data = run.model, run.data
    check_temporal_pool(
        model, data.frame_count, key="model.temporal_pool", frame_count_key="data.frame_count"
    )
    if model.type == "MTRN" and data.frame_count < 2:
        raise EpicArError("model.type MTRN relates frames: data.frame_count must be at least 2")
    check_pretrained(model.pretrained, model, key="model.pretrained")
    input_size, rescale_size = data.preprocessing.input_size, data.test_augmentation.rescale_size
    if input_size > rescale_size:
        raise EpicArError(
            f"data.preprocessing.input_size {input_size} is larger than "
            f"data.test_augmentation.rescale_size {rescale_size} (the frames' shorter side at "
            "test time, from which the centre crop is taken)"
        )
    check_one_source(data)
    if data.videos_dir is not None:
        if data.frames_dir is not None:
            raise EpicArError("data.frames_dir and data.videos_dir are both set; set one")
        if run.modality != "rgb":
            raise EpicArError(
                "data.videos_dir: videos have no optical flow; train flow models from frame "
                "archives (data.frames_dir) or gulp directories"
            )
    scales = data.train_augmentation.multiscale_crop_scales
    if not scales or not all(0 < scale <= 1 for scale in scales):
        raise EpicArError(
            f"data.train_augmentation.multiscale_crop_scales: {scales} must be in (0, 1]"
        )


def check_one_source(data: DataConfig) -> None:
    """Refuse gulp directories together with frame archives or videos: which the run would
    read is not obvious from the command line (the archives would win)."""
    reader = "videos_dir" if data.videos_dir is not None else "frames_dir"
    if getattr(data, reader) is None:
        return
    for key in (GULP_ROOT_KEY, *SPLIT_GULP_KEYS):
        if getattr(data, key) is not None:
            what = "videos" if reader == "videos_dir" else "frame archives"
            raise EpicArError(
                f"data.{key} and data.{reader} are both set: set one (gulp directories, "
                f"or {what} with labels files)"
            )


def check_sources(data: DataConfig, *, need_val: bool) -> None:
    """The frames the run reads exist: gulp directories, or archives (or videos) and label
    files."""
    splits: list[Split] = ["train", "val"] if need_val or data.train_on_val else ["train"]
    for key in ("frames_dir", "videos_dir"):
        folder = getattr(data, key)
        if folder is None:
            continue
        if not Path(folder).is_dir():
            raise EpicArError(f"data.{key}: {folder} is not a directory")
        for split in splits:
            labels = split_labels(data, split)
            if not Path(labels).is_file():
                raise EpicArError(f"data.{split}_labels: no such file {labels}")
        return
    for split in splits:
        gulp_dir = getattr(data, f"{split}_gulp_dir")
        if gulp_dir is None:
            raise EpicArError(
                f"data.{split}_gulp_dir is not set: add data.{split}_gulp_dir=... or "
                "data._root_gulp_dir=... (the folder holding the gulp directories)"
            )
        path = Path(gulp_dir)
        if not path.is_dir():
            raise EpicArError(f"data.{split}_gulp_dir: {path} does not exist")
        if not committed_chunks(path):
            raise EpicArError(
                f"data.{split}_gulp_dir: {path} holds no gulp chunks (run epic-ar gulp)"
            )


def plain_run_config(config: Any) -> dict[str, Any]:
    """A composed Hydra config (DictConfig) → plain dicts, interpolations resolved.

    `data._root_gulp_dir` may stay unset when nothing refers to it: when the frame archives
    (or videos) are read instead, or each gulp directory the run reads is set alone (those
    left referring to it are then unset). Any other unset (`???`) value is an error naming
    its key.
    """
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    if not isinstance(config, DictConfig) or "modality" not in config:
        raise no_run_config()
    config = copy.deepcopy(config)
    data = config.get("data")
    if isinstance(data, DictConfig):
        _unset_gulp_root(data)
    try:
        plain = OmegaConf.to_container(config, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as exc:
        key = exc.full_key or "a value"
        hint = ""
        if "_root_gulp_dir" in str(exc):
            hint = (
                " (the folder holding the gulp directories, or set data.frames_dir or "
                "data.videos_dir)"
            )
        raise EpicArError(f"{key} is not set: add {key}=...{hint}") from None
    except OmegaConfBaseException as exc:
        raise EpicArError(f"config: {str(exc).splitlines()[0]}") from None
    assert isinstance(plain, dict)
    return {str(key): value for key, value in plain.items()}


def _unset_gulp_root(data: Any) -> None:
    """Where `data._root_gulp_dir` is unset (`???` or null) but the run names its frames
    otherwise (archives, videos, or a gulp directory set alone), set it to null and unset
    the gulp directories that refer to it (`${data._root_gulp_dir}/rgb_test`), which would
    otherwise name a folder "None/rgb_test" or fail as unset."""
    from omegaconf import OmegaConf, open_dict

    raw = OmegaConf.to_container(data, resolve=False)
    assert isinstance(raw, dict)
    if raw.get(GULP_ROOT_KEY) not in (None, "???"):
        return
    referring = [
        key
        for key in SPLIT_GULP_KEYS
        if key in raw and OmegaConf.is_interpolation(data, key) and GULP_ROOT_KEY in str(raw[key])
    ]
    set_alone = [key for key in SPLIT_GULP_KEYS if key not in referring and raw.get(key)]
    other_source = raw.get("frames_dir") is not None or raw.get("videos_dir") is not None
    if raw.get(GULP_ROOT_KEY) == "???" and not (other_source or set_alone):
        return  # nothing names the frames: "data._root_gulp_dir is not set"
    with open_dict(data):
        data[GULP_ROOT_KEY] = None
        for key in referring:
            data[key] = None
