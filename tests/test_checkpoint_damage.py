"""Checkpoints whose stored config or weights were damaged (edited and saved again): each
is refused with one line naming the file, the key and what is wrong; a run config's own
model section is checked the same way, its messages naming the key alone."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from epic_ar.compat.lightning_config import resolve_interpolations
from epic_ar.errors import EpicArError
from epic_ar.models.checkpoint import load_checkpoint
from epic_ar.models.config import model_config_from_dict
from helpers.bad_input import one_error_line, run
from helpers.checkpoints import tiny_checkpoint

Edit = Callable[[dict[str, Any]], None]


def _set(section: str | None, key: str, value: object) -> Edit:
    """An edit setting `hyper_parameters[section][key]` (or `hyper_parameters[key]`)."""

    def edit(checkpoint: dict[str, Any]) -> None:
        config = checkpoint["hyper_parameters"]
        (config if section is None else config[section])[key] = value

    return edit


def _state_keys_to_ints(checkpoint: dict[str, Any]) -> None:
    checkpoint["state_dict"] = dict(enumerate(checkpoint["state_dict"].values()))


def _state_values_to_ints(checkpoint: dict[str, Any]) -> None:
    checkpoint["state_dict"] = {key: 1 for key in checkpoint["state_dict"]}


def _one_state_value_to_a_list(checkpoint: dict[str, Any]) -> None:
    checkpoint["state_dict"]["model.new_fc.bias"] = [0.0] * 397


def _one_state_key_to_bytes(checkpoint: dict[str, Any]) -> None:
    state = checkpoint["state_dict"]
    state[b"model.new_fc.bias"] = state.pop("model.new_fc.bias")


# What was damaged, and the message after "<file>: " (checked whole).
DAMAGED: list[tuple[str, Edit, str]] = [
    ("data list", _set(None, "data", [1, 2]), "data: [1, 2] is not a mapping"),
    (
        "frame_count str",
        _set("data", "frame_count", "abc"),
        "data.frame_count: 'abc' is not an integer >= 1",
    ),
    ("frame_count 0", _set("data", "frame_count", 0), "data.frame_count: 0 is not an integer >= 1"),
    (
        "frame_count bool",
        _set("data", "frame_count", True),
        "data.frame_count: True is not an integer >= 1",
    ),
    (
        "segment_length float",
        _set("data", "segment_length", 1.5),
        "data.segment_length: 1.5 is not an integer >= 1",
    ),
    ("model str", _set(None, "model", "resnet"), "model: 'resnet' is not a mapping of model keys"),
    (
        "dropout str",
        _set("model", "dropout", "abc"),
        "model.dropout: 'abc' is not a number in [0, 1)",
    ),
    ("dropout 1", _set("model", "dropout", 1.0), "model.dropout: 1.0 is not a number in [0, 1)"),
    (
        "partial_bn str",
        _set("model", "partial_bn", "yes"),
        "model.partial_bn: 'yes' is not true or false",
    ),
    (
        "type",
        _set("model", "type", "C3D"),
        "model.type: 'C3D' is not one of ['TSN', 'MTRN', 'TSM']",
    ),
    (
        "pretrained int",
        _set("model", "pretrained", 3),
        "model.pretrained: 3 is not a string or null",
    ),
    ("shift_div 0", _set("model", "shift_div", 0), "model.shift_div: 0 is not an integer >= 1"),
    ("modality", _set(None, "modality", "Audio"), "modality 'Audio' is not RGB or Flow"),
    (
        "interpolation",
        _set("data", "frame_count", "${nope.x}"),
        "data.frame_count: '${nope.x}' refers to a missing key",
    ),
    (
        "state keys ints",
        _state_keys_to_ints,
        "state_dict: keys 0, 1, 2, 3, 4 (+117 more) are not strings",
    ),
    (
        "one state key bytes",
        _one_state_key_to_bytes,
        "state_dict: key b'model.new_fc.bias' is not a string",
    ),
    (
        "state values ints",
        _state_values_to_ints,
        "state_dict: model.base_model.conv1.weight, model.base_model.bn1.weight, "
        "model.base_model.bn1.bias, model.base_model.bn1.running_mean, "
        "model.base_model.bn1.running_var (+117 more) are not tensors (int)",
    ),
    (
        "one state value list",
        _one_state_value_to_a_list,
        "state_dict: model.new_fc.bias is not a tensor (list)",
    ),
]


@pytest.fixture(scope="module")
def sound_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny TSN RGB checkpoint (resnet18: 122 state dict entries) as a dict."""
    path = tiny_checkpoint(tmp_path_factory.mktemp("sound") / "tsn.ckpt")
    loaded: dict[str, Any] = torch.load(path, weights_only=True)
    assert len(loaded["state_dict"]) == 122  # the counts the messages show
    return loaded


def _damaged(sound: dict[str, Any], edit: Edit, path: Path) -> Path:
    checkpoint = copy.deepcopy(sound)
    edit(checkpoint)
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize(
    ("edit", "message"), [case[1:] for case in DAMAGED], ids=[case[0] for case in DAMAGED]
)
def test_damaged_checkpoints_are_refused_naming_file_and_key(
    sound_checkpoint: dict[str, Any], edit: Edit, message: str, tmp_path: Path
) -> None:
    path = _damaged(sound_checkpoint, edit, tmp_path / "damaged.ckpt")
    with pytest.raises(EpicArError) as raised:
        load_checkpoint(path)
    assert str(raised.value) == f"{path}: {message}"


def test_the_sound_checkpoint_loads(sound_checkpoint: dict[str, Any], tmp_path: Path) -> None:
    """The damage, not the base, is what the cases above refuse; a null segment_length is
    the modality's default, as in run configs."""
    null_length = _set("data", "segment_length", None)
    path = _damaged(sound_checkpoint, null_length, tmp_path / "sound.ckpt")
    model, config = load_checkpoint(path)
    assert (model.config.dropout, model.config.partial_bn) == (0.7, True)
    assert (model.spec.frame_count, model.spec.segment_length, model.spec.channels) == (3, 1, 3)
    assert config["data"]["segment_length"] is None


def test_the_command_line_prints_one_line_and_writes_nothing(
    sound_checkpoint: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _damaged(sound_checkpoint, _set("model", "dropout", "abc"), tmp_path / "bad.ckpt")
    out = tmp_path / "out.pt"
    status, _, err = run(capsys, "test", path, out, "--split", "val", "--datadir", tmp_path)
    assert status == 1
    assert one_error_line(err, "test") == f"{path}: model.dropout: 'abc' is not a number in [0, 1)"
    assert not out.exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"dropout": "abc"}, "model.dropout: 'abc' is not a number in [0, 1)"),
        ({"dropout": True}, "model.dropout: True is not a number in [0, 1)"),
        ({"dropout": float("nan")}, "model.dropout: nan is not a number in [0, 1)"),
        ({"partial_bn": "yes"}, "model.partial_bn: 'yes' is not true or false"),
        ({"temporal_pool": 1}, "model.temporal_pool: 1 is not true or false"),
        ({"backbone_dim": 2.0}, "model.backbone_dim: 2.0 is not an integer >= 1"),
        ({"trn_eval": "mean"}, "model.trn_eval: 'mean' is not one of ['sampled', 'expected']"),
        ({"backbone": ["resnet18"]}, "model.backbone: ['resnet18'] is not one of ['resnet18', "
         "'resnet34', 'resnet50', 'resnet101', 'resnet152']"),
        ({1: 2, "a": 3}, "model: unknown model keys [1, 'a']; known: ['backbone', 'backbone_dim', "
         "'dropout', 'non_local', 'partial_bn', 'pretrained', 'shift_div', 'temporal_pool', "
         "'trn_eval', 'type']"),
        ([1, 2], "model: [1, 2] is not a mapping of model keys"),
    ],
)  # fmt: skip
def test_run_config_model_sections_name_the_key_without_a_file(
    values: object, message: str
) -> None:
    with pytest.raises(EpicArError) as raised:
        model_config_from_dict(values)
    assert str(raised.value) == message


def test_run_config_model_sections_keep_their_values() -> None:
    config = model_config_from_dict(
        {"type": "TSM", "backbone": "resnet18", "pretrained": None, "dropout": 0,
         "partial_bn": False, "shift_div": 4, "weights": "w.pth", "compile": True}
    )  # fmt: skip
    assert (config.type, config.backbone, config.pretrained) == ("TSM", "resnet18", None)
    assert (config.dropout, config.partial_bn, config.shift_div) == (0, False, 4)


def test_interpolation_errors_name_the_key_holding_the_reference() -> None:
    config = {"a": {"b": ["x", "${c.d}"]}, "c": {}}
    with pytest.raises(EpicArError) as raised:
        resolve_interpolations(config, "f.ckpt")
    assert str(raised.value) == "f.ckpt: a.b[1]: '${c.d}' refers to a missing key"
    # a reference to a value with a bad reference: the message names where that one is
    chained = {"a": "${b}", "b": "${env:HOME}"}
    with pytest.raises(EpicArError) as raised:
        resolve_interpolations(chained)
    assert str(raised.value) == "config: b: cannot resolve '${env:HOME}'"
