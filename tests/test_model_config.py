"""The model's output layout and the checks on model settings, each in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from epic_ar.annotations.classes import action_ids
from epic_ar.data.config import DataConfig, split_labels
from epic_ar.errors import EpicArError
from epic_ar.models import InputSpec, ModelConfig, build_model
from epic_ar.models.config import check_pretrained, check_temporal_pool, split_scores
from epic_ar.models.pretrained import load_pretrained
from epic_ar.training.run_config import check_sources, parse_run_config


def test_scores_split_into_97_verbs_then_300_nouns() -> None:
    scores = np.arange(2 * 397).reshape(2, 397)
    verbs, nouns = split_scores(scores)
    assert verbs.shape == (2, 97) and nouns.shape == (2, 300)
    assert verbs[1, 0] == 397 and verbs[1, -1] == 397 + 96
    assert nouns[0, 0] == 97 and nouns[1, -1] == 2 * 397 - 1
    tensor_verbs, tensor_nouns = split_scores(torch.as_tensor(scores))
    assert torch.equal(tensor_verbs, torch.as_tensor(verbs))
    assert torch.equal(tensor_nouns, torch.as_tensor(nouns))


def test_action_ids_for_arrays_and_tensors() -> None:
    verbs, nouns = np.array([0, 3, 96]), np.array([299, 0, 17])
    assert action_ids(verbs, nouns).tolist() == [299, 3000, 96017]
    grid = action_ids(torch.tensor([[1], [2]]), torch.tensor([[5, 6]]))
    assert grid.tolist() == [[1005, 1006], [2005, 2006]]


def config(**values: Any) -> ModelConfig:
    return ModelConfig(**values)


def test_kinetics_weights_exist_for_tsm_resnet50_only() -> None:
    check_pretrained("kinetics", config(type="TSM", backbone="resnet50"))
    for other in ("imagenet", None, "weights.pth"):
        check_pretrained(other, config(type="TSN", backbone="resnet18"))
    for model_type, backbone in [("TSN", "resnet50"), ("MTRN", "resnet50"), ("TSM", "resnet101")]:
        with pytest.raises(EpicArError) as raised:
            check_pretrained("kinetics", config(type=model_type, backbone=backbone), key="a.b")
        assert str(raised.value) == "a.b: kinetics weights exist for TSM with resnet50 only"


def test_temporal_pool_needs_tsm_and_an_even_frame_count() -> None:
    check_temporal_pool(config(type="TSM", temporal_pool=True), 8)
    check_temporal_pool(config(type="TSN"), 3)  # no pool: nothing to check
    with pytest.raises(EpicArError) as raised:
        check_temporal_pool(config(type="MTRN", temporal_pool=True), 8, key="model.temporal_pool")
    assert str(raised.value) == "model.temporal_pool: applies to TSM only"
    with pytest.raises(EpicArError) as raised:
        check_temporal_pool(config(type="TSM", temporal_pool=True), 5)
    assert str(raised.value) == "temporal_pool halves the frames: frame_count 5 is odd"
    with pytest.raises(EpicArError) as raised:
        check_temporal_pool(
            config(type="TSM", temporal_pool=True),
            5,
            key="model.temporal_pool",
            frame_count_key="data.frame_count",
        )
    assert str(raised.value) == "model.temporal_pool halves the frames: data.frame_count 5 is odd"


def test_run_config_model_and_pretrained_refuse_alike() -> None:
    """The run config's messages name `model.*` keys; the library's name its own."""
    base: dict[str, Any] = {"modality": "RGB", "learning": {"batch_size": 2}}
    cases = [
        ({"type": "TSN", "temporal_pool": True}, {}, "model.temporal_pool: applies to TSM only"),
        ({"type": "TSM", "temporal_pool": True}, {"frame_count": 3},
         "model.temporal_pool halves the frames: data.frame_count 3 is odd"),
        ({"type": "TSN", "pretrained": "kinetics"}, {},
         "model.pretrained: kinetics weights exist for TSM with resnet50 only"),
    ]  # fmt: skip
    for model, data, message in cases:
        with pytest.raises(EpicArError) as raised:
            parse_run_config({**base, "model": model, "data": data})
        assert str(raised.value) == message
    spec = InputSpec("rgb", frame_count=4)
    with pytest.raises(EpicArError, match=r"^temporal_pool: applies to TSM only$"):
        build_model(config(type="TSN", backbone="resnet18", temporal_pool=True), spec)
    with pytest.raises(
        EpicArError, match=r"^temporal_pool halves the frames: frame_count 3 is odd$"
    ):
        build_model(
            config(type="TSM", backbone="resnet18", temporal_pool=True), InputSpec("rgb", 3)
        )
    tsn = build_model(config(type="TSN", backbone="resnet18", pretrained=None), spec)
    with pytest.raises(EpicArError) as raised:
        load_pretrained(tsn, "kinetics")
    assert str(raised.value) == "pretrained: kinetics weights exist for TSM with resnet50 only"


def test_frames_dir_needs_each_splits_labels(tmp_path: Path) -> None:
    train_labels = tmp_path / "train.csv"
    train_labels.write_text("narration_id\n")
    data = DataConfig(frames_dir=str(tmp_path), train_labels=str(train_labels))
    assert split_labels(data, "train") == str(train_labels)
    with pytest.raises(EpicArError) as raised:
        split_labels(data, "val")
    assert str(raised.value) == "data.frames_dir is set but data.val_labels is not"
    with pytest.raises(EpicArError, match=r"^data\.frames_dir is set but data\.val_labels is not$"):
        check_sources(data, need_val=True)
