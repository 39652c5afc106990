"""Run configs: the packaged configs hold the published values, the original's trainer
arguments are translated, and combinations that cannot train are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hydra import compose, initialize_config_module

from epic_ar.errors import EpicArError
from epic_ar.training.run_config import parse_run_config, plain_run_config, trainer_arguments
from helpers.checkpoints import PUBLISHED, REFERENCE


def test_packaged_configs_hold_the_published_values() -> None:
    published = json.loads((REFERENCE / "official_hyper_parameters.json").read_text())
    with initialize_config_module("epic_ar.configs", version_base="1.3"):
        for name in PUBLISHED:
            ours = plain_run_config(compose(name, ["data._root_gulp_dir=/g"]))
            theirs = published[name]
            for section in ("model", "learning"):
                for key, value in theirs[section].items():
                    assert ours[section][key] == value, (name, section, key)
            for key, value in theirs["data"].items():
                if key.endswith("gulp_dir") or key == "_root_gulp_dir":
                    continue
                assert ours["data"][key] == value, (name, key)
            for key in ("gradient_clip_val", "max_epochs"):
                assert ours["trainer"][key] == theirs["trainer"][key]
            assert ours["seed"] == theirs["seed"] and ours["modality"] == theirs["modality"]


def test_original_trainer_arguments_are_translated() -> None:
    arguments, resume = trainer_arguments(
        {
            "gpus": 4,
            "devices": "auto",
            "distributed_backend": "dp",
            "resume_from_checkpoint": "/runs/epoch=3.ckpt",
            "row_log_interval": 5,
        }
    )
    assert arguments == {
        "devices": 4,
        "accelerator": "gpu",
        "strategy": "auto",
        "log_every_n_steps": 5,
    }
    assert resume == "/runs/epoch=3.ckpt"
    arguments, _ = trainer_arguments({"accelerator": "cpu", "devices": 2, "strategy": "ddp"})
    assert arguments == {"accelerator": "cpu", "devices": 2, "strategy": "ddp"}
    with pytest.raises(EpicArError, match="not both"):
        trainer_arguments({"gpus": 2, "devices": 2})


def base_config(**sections: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "modality": "RGB",
        "seed": 1,
        "data": {},
        "learning": {"batch_size": 8},
        "model": {"type": "TSN", "backbone": "resnet18"},
        "trainer": {},
    }
    for key, value in sections.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return config


def test_run_config_checks_combinations() -> None:
    run = parse_run_config(base_config(model={"weights": "w.pt", "weights_strict": False}))
    assert run.init.weights == "w.pt" and not run.init.weights_strict
    assert "weights" in run.stored["model"]  # kept, as the original kept it
    with pytest.raises(EpicArError, match="kinetics weights exist for TSM with resnet50 only"):
        parse_run_config(base_config(model={"pretrained": "kinetics"}))
    with pytest.raises(EpicArError, match=r"data\.frame_count 3 is odd"):
        parse_run_config(
            base_config(model={"type": "TSM", "temporal_pool": True}, data={"frame_count": 3})
        )
    with pytest.raises(EpicArError, match="data: unknown keys \\['frames'\\]"):
        parse_run_config(base_config(data={"frames": 3}))
    with pytest.raises(EpicArError, match=r"resume or trainer\.resume_from_checkpoint"):
        parse_run_config(base_config(resume="a.ckpt", trainer={"resume_from_checkpoint": "b"}))
