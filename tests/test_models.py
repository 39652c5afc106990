"""TSN / TRN / TSM models and the published checkpoints."""

from __future__ import annotations

import itertools
import pickle
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from epic_ar.compat.lightning_config import current_config, resolve_interpolations
from epic_ar.errors import EpicArError
from epic_ar.modality import Modality
from epic_ar.models import InputSpec, ModelConfig, build_model, load_checkpoint, parameter_groups
from epic_ar.models.backbones import flow_conv
from epic_ar.models.config import model_config_from_dict
from epic_ar.models.temporal_shift import (
    reference_temporal_shift,
    shift_by_concatenation,
    temporal_shift,
)
from epic_ar.models.trn import MultiScaleRelations, relation_subsets
from helpers.checkpoints import PUBLISHED, filled_skeleton, manifest_state_dict


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("segments", "channels", "shift_div"), [(8, 16, 8), (3, 10, 4), (1, 8, 8)])
def test_shift_equals_the_naive_reference_forward_and_backward(
    segments: int, channels: int, shift_div: int, channels_last: bool
) -> None:
    x = torch.randn(2 * segments, channels, 3, 5)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours_in, naive_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, naive = (
        temporal_shift(ours_in, segments, shift_div),
        reference_temporal_shift(naive_in, segments, shift_div),
    )
    assert torch.equal(ours, naive)
    upstream = torch.randn_like(ours)
    ours.backward(upstream)  # type: ignore[no-untyped-call]
    naive.backward(upstream)  # type: ignore[no-untyped-call]
    assert ours_in.grad is not None and naive_in.grad is not None
    assert torch.equal(ours_in.grad, naive_in.grad)


@pytest.mark.parametrize(("segments", "channels", "shift_div"), [(8, 16, 8), (3, 10, 4), (1, 8, 8)])
def test_the_exported_shift_equals_the_naive_reference(
    segments: int, channels: int, shift_div: int
) -> None:
    x = torch.randn(2 * segments, channels, 3, 5)
    clips = x.view(2, segments, channels, 3, 5)
    exported = shift_by_concatenation(clips, channels // shift_div).reshape(x.shape)
    assert torch.equal(exported, reference_temporal_shift(x, segments, shift_div))


def test_shift_moves_the_right_channels() -> None:
    x = torch.arange(3.0).view(1, 3, 1, 1, 1).expand(1, 3, 4, 1, 1).reshape(3, 4, 1, 1)
    out = temporal_shift(x, 3, shift_div=4)  # fold 1: channel 0 from t+1, channel 1 from t-1
    assert out[:, 0].flatten().tolist() == [1, 2, 0]
    assert out[:, 1].flatten().tolist() == [0, 0, 1]
    assert out[:, 2:].flatten().tolist() == [0, 0, 1, 1, 2, 2]


def test_flow_conv_is_the_mean_kernel_repeated() -> None:
    conv = nn.Conv2d(3, 4, 3, bias=True)
    flow = flow_conv(conv, 10)
    assert flow.weight.shape == (4, 10, 3, 3)
    mean = conv.weight.mean(dim=1)
    for channel in range(10):
        assert torch.allclose(flow.weight[:, channel], mean)
    assert flow.bias is not None and conv.bias is not None
    assert torch.equal(flow.bias, conv.bias)


def small_model(kind: str = "TSN", modality: Modality = "rgb", **options: Any) -> Any:
    spec = InputSpec(modality, frame_count=4, segment_length=1 if modality == "rgb" else 5)
    return build_model(ModelConfig(type=kind, backbone="resnet18", **options), spec)  # type: ignore[arg-type]


def test_partial_bn_freezes_every_batchnorm_but_the_first() -> None:
    model = small_model().train()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms[0].training and norms[0].weight.requires_grad
    assert all(not n.training and not n.weight.requires_grad for n in norms[1:])
    model_without = small_model(partial_bn=False).train()
    assert all(m.training for m in model_without.modules() if isinstance(m, nn.BatchNorm2d))


def test_parameter_groups() -> None:
    model = small_model(modality="flow")
    groups = {g["name"]: g for g in parameter_groups(model, lr=0.01, weight_decay=5e-4)}
    assert len(groups["first_conv_weight"]["params"]) == 1
    assert groups["first_conv_weight"]["params"][0] is model.base_model.conv1.weight
    assert len(groups["bn"]["params"]) == 2  # partial BN: only the first BN's weight and bias
    assert {(g["lr"], g["weight_decay"]) for g in groups.values()} == {(0.01, 5e-4)}  # published
    applied = {
        g["name"]: (g["lr"], g["weight_decay"])
        for g in parameter_groups(model, lr=0.01, weight_decay=5e-4, apply_multipliers=True)
    }
    assert applied["first_conv_weight"] == (0.05, 5e-4)
    assert applied["first_conv_bias"] == (0.1, 0.0)
    assert applied["normal_bias"] == (0.02, 0.0)
    assert applied["bn"] == (0.01, 0.0)
    trainable = {id(p) for p in model.train().parameters() if p.requires_grad}
    grouped = {id(p) for g in groups.values() for p in g["params"]}
    assert trainable == grouped


def test_relation_subsets_are_lexicographic() -> None:
    assert relation_subsets(4, 3) == [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]
    relations = MultiScaleRelations(5, 8, 7)
    assert relations.scales == [8, 7, 6, 5, 4, 3, 2]
    assert [len(s) for s in relations.subsets] == [1, 8, 28, 56, 70, 56, 28]
    assert relations.samples_per_scale == [1, 3, 3, 3, 3, 3, 3]


def test_trn_expected_is_deterministic_and_the_mean_of_sampled() -> None:
    torch.manual_seed(0)
    relations = MultiScaleRelations(6, 4, 5, expected_eval=True).eval()
    features = torch.randn(3, 4, 6)
    with torch.no_grad():
        expected = relations(features)
        assert torch.equal(expected, relations(features))
        relations.expected_eval = False
        relations.seed(1)
        sampled = torch.stack([relations(features) for _ in range(3000)]).mean(dim=0)
        relations.seed(1)
        again = torch.stack([relations(features) for _ in range(3000)]).mean(dim=0)
    assert torch.equal(sampled, again)  # seeded
    assert torch.allclose(sampled, expected, atol=0.02 * expected.abs().max().item())
    # scale 2 of 4 frames: 6 subsets, 3 sampled; scale 3: 4 subsets, 3 sampled
    assert relations.samples_per_scale == [1, 3, 3]


def test_set_trn_eval_switches_a_built_model() -> None:
    model = small_model("MTRN").eval()
    assert model.consensus is not None
    captured: list[torch.Tensor] = []  # the consensus's input: [B, 4, 256] frame features
    model.consensus.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0]))
    frames = torch.randn(2, model.spec.frame_count, 3, 32, 32)
    with torch.no_grad():
        expected = model(frames)
        model.set_trn_eval("sampled", seed=3)
        first = model(frames)
        model.set_trn_eval("sampled", seed=3)
        assert torch.equal(model(frames), first)  # seeded draws repeat
        model.set_trn_eval("expected")
        assert torch.equal(model(frames), expected)
        # Recomputed from the relation MLPs (scales 4, 3, 2 of 4 frames): `expected` adds
        # 3 x the mean over all subsets of scales 3 and 2, `sampled` 3 distinct subsets.
        features, mlps = captured[0], model.consensus.fc_fusion_scales
        relations = [
            [mlps[index](features[:, list(subset)].flatten(1))
             for subset in itertools.combinations(range(4), scale)]
            for index, scale in enumerate((4, 3, 2))
        ]  # fmt: skip
        whole, threes, twos = relations[0][0], relations[1], relations[2]
        mean_sum = 3 * torch.stack(threes).mean(0) + 3 * torch.stack(twos).mean(0)
        assert torch.allclose(expected, whole + mean_sum, atol=1e-6)
        drawn = [
            (three, two)
            for three in itertools.combinations(range(4), 3)
            for two in itertools.combinations(range(6), 3)
            if torch.allclose(
                first,
                whole + sum(threes[i] for i in three) + sum(twos[i] for i in two),
                atol=1e-6,
            )
        ]
        assert len(drawn) == 1  # exactly one choice of 3 + 3 subsets gives the sampled scores
    with pytest.raises(EpicArError, match="trn_eval sampled applies to TRN models, not TSN"):
        small_model("TSN").set_trn_eval("sampled")
    tsn = small_model("TSN").eval()
    frames = torch.randn(1, 4, 3, 32, 32)
    before = tsn(frames)
    tsn.set_trn_eval("expected")  # already deterministic: nothing changes
    assert torch.equal(tsn(frames), before)


@pytest.mark.parametrize("kind", ["TSN", "MTRN", "TSM"])
def test_small_models_output_397_scores(kind: str) -> None:
    model = small_model(kind, "flow").eval()
    with torch.no_grad():
        scores = model(torch.randn(2, 4, 10, 32, 32))
    assert scores.shape == (2, 397)
    with pytest.raises(EpicArError, match=r"\[B, 4, 10, H, W\]"):
        model(torch.randn(2, 4, 3, 32, 32))


def test_state_dict_layouts() -> None:
    tsm = small_model("TSM").state_dict()
    assert "base_model.layer1.0.conv1.net.weight" in tsm
    assert "new_fc.weight" in tsm and not any(k.startswith("base_model.fc.") for k in tsm)
    tsm_no_dropout = small_model("TSM", dropout=0.0).state_dict()
    assert "base_model.fc.weight" in tsm_no_dropout and "new_fc.weight" not in tsm_no_dropout
    assert tsm_no_dropout["base_model.fc.weight"].shape == (397, 512)
    trn = small_model("MTRN").state_dict()
    assert trn["new_fc.weight"].shape == (256, 512)
    assert trn["consensus.fc_fusion_scales.0.1.weight"].shape == (256, 4 * 256)
    assert trn["consensus.fc_fusion_scales.2.3.weight"].shape == (397, 256)


def test_temporal_pool_halves_frames() -> None:
    model = small_model("TSM", temporal_pool=True).eval()
    assert model.output_frames == 2
    with torch.no_grad():
        assert model(torch.randn(1, 4, 3, 32, 32)).shape == (1, 397)


def test_interpolations_and_trainer_keys() -> None:
    stored = {
        "modality": "RGB",
        "data": {"_root_gulp_dir": "/old", "train_gulp_dir": "${data._root_gulp_dir}/rgb_train"},
        "trainer": {"row_log_interval": 5, "log_save_interval": 20, "gpus": 4,
                    "distributed_backend": "dp", "terminate_on_nan": True, "max_epochs": 80},
    }  # fmt: skip
    config = current_config(stored)
    assert config["data"]["train_gulp_dir"] == "/old/rgb_train"
    assert config["trainer"] == {"log_every_n_steps": 5, "devices": 4, "strategy": "auto",
                                 "max_epochs": 80}  # fmt: skip
    with pytest.raises(EpicArError, match="missing key"):
        resolve_interpolations({"a": "${b.c}"})
    with pytest.raises(EpicArError, match="cannot resolve"):
        resolve_interpolations({"a": "${oc.env:HOME}"})


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_checkpoints_load_strictly(name: str, tmp_path: Path) -> None:
    state = manifest_state_dict(name)
    path = filled_skeleton(name, tmp_path / f"{name}.ckpt", state)
    model, config = load_checkpoint(path)
    loaded = model.state_dict()
    assert set(loaded) == {key.removeprefix("model.") for key in state}
    for key in ("base_model.conv1.weight", "base_model.layer4.2.bn3.running_var"):
        assert torch.equal(loaded[key], state[f"model.{key}"])
    modality = "RGB" if name.endswith("rgb") else "Flow"
    assert config["modality"] == modality
    assert (
        config["data"]["train_gulp_dir"]
        == f"/datasets/EPIC-KITCHENS-100/gulp/{modality.lower()}_train"
    )
    assert config["trainer"]["devices"] == 4 and "row_log_interval" not in config["trainer"]
    if modality == "RGB":  # the published RGB models keep std = mean (their weights need it)
        preprocessing = config["data"]["preprocessing"]
        assert preprocessing["std"] == preprocessing["mean"] == [0.485, 0.456, 0.406]
        with torch.no_grad():
            assert model(torch.randn(1, 8, 3, 64, 64)).shape == (1, 397)
    else:
        assert model.base_model.conv1.weight.shape == (64, 10, 7, 7)


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    state = manifest_state_dict("tsn_rgb")
    del state["model.new_fc.bias"]
    state["model.extra.weight"] = torch.zeros(1)
    path = filled_skeleton("tsn_rgb", tmp_path / "bad.ckpt", state)
    with pytest.raises(EpicArError, match=r"missing keys: new_fc.bias; unexpected keys: extra"):
        load_checkpoint(path)


class _Hostile:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (subprocess.call, (["touch", str(self.target)],))


def test_a_hostile_checkpoint_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": _Hostile(target)}, path)
    with pytest.raises(EpicArError, match=r"refused to load '[a-z]+.call'.*trust=True"):
        load_checkpoint(path)
    assert not target.exists()
    plain = tmp_path / "plain.ckpt"
    plain.write_bytes(pickle.dumps({"state_dict": {}}))
    with pytest.raises(EpicArError, match="not a readable checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(EpicArError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.ckpt")


@pytest.mark.parametrize(
    ("kind", "extra", "time_steps"),
    [("TSN", {}, 4), ("MTRN", {"backbone_dim": 16}, 4), ("TSM", {}, 4),
     ("TSM", {"temporal_pool": True}, 2)],
)  # fmt: skip
def test_pooled_features_are_the_classifier_input_averaged_over_time(
    kind: str, extra: dict[str, Any], time_steps: int
) -> None:
    config = model_config_from_dict(
        {"type": kind, "backbone": "resnet18", "pretrained": None, "dropout": 0.5, **extra}
    )
    model = build_model(config, InputSpec("rgb", 4)).eval()
    caught: list[torch.Tensor] = []
    assert model.new_fc is not None
    model.new_fc.register_forward_pre_hook(lambda _, args: caught.append(args[0]))
    frames = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        model(frames)
        pooled = model.pooled_features(frames)
    expected = caught[0].reshape(2, time_steps, 512).mean(dim=1)
    assert pooled.shape == (2, 512) == (2, model.feature_size)
    torch.testing.assert_close(pooled, expected, rtol=0, atol=1e-6)
