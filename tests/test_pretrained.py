"""Initialisation from ImageNet / Kinetics / local files, and `epic-ar download`, offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from epic_ar.cli.main import main
from epic_ar.errors import EpicArError
from epic_ar.fileio.download import download as real_download
from epic_ar.modality import Modality
from epic_ar.models import InputSpec, ModelConfig, VideoModel, build_model
from epic_ar.models import pretrained as pretrained_module
from epic_ar.models.pretrained import load_pretrained
from helpers.checkpoints import filled_skeleton


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty torch hub cache; downloads are refused (tests never fetch anything)."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))

    def offline(url: str, destination: Path, **_: object) -> Path:
        if not url.startswith("file://"):
            raise EpicArError(f"could not download {url}: offline")
        return real_download(url, destination, force=True)

    monkeypatch.setattr(pretrained_module, "download", offline)
    yield tmp_path / "hub" / "checkpoints"
    torch.hub.set_dir(previous)


def model(kind: str, modality: Modality = "rgb", backbone: str = "resnet18") -> VideoModel:
    spec = InputSpec(modality, frame_count=4, segment_length=1 if modality == "rgb" else 5)
    return build_model(ModelConfig(type=kind, backbone=backbone), spec)  # type: ignore[arg-type]


def test_imagenet_weights_from_the_hub_cache(hub: Path) -> None:
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    reference = torchvision.models.resnet18(weights=None).state_dict()
    hub.mkdir(parents=True)
    torch.save(reference, hub / Path(weights.url).name)
    tsm = model("TSM")
    classifier = tsm.state_dict()["new_fc.weight"].clone()
    load_pretrained(tsm, "imagenet")
    ours = tsm.state_dict()
    assert torch.equal(
        ours["base_model.layer1.0.conv1.net.weight"], reference["layer1.0.conv1.weight"]
    )
    assert torch.equal(
        ours["base_model.layer4.1.bn2.running_mean"], reference["layer4.1.bn2.running_mean"]
    )
    assert torch.equal(ours["new_fc.weight"], classifier)  # the classifier stays new
    flow = model("TSN", "flow")
    load_pretrained(flow, "imagenet")
    conv1 = flow.state_dict()["base_model.conv1.weight"]
    assert conv1.shape == (64, 10, 7, 7)
    assert torch.allclose(conv1[:, 7], reference["conv1.weight"].mean(dim=1))


def test_missing_imagenet_weights_say_where_to_put_them(hub: Path) -> None:
    with pytest.raises(EpicArError, match=r"place resnet18-f37072fd.pth in .*hub/checkpoints"):
        load_pretrained(model("TSN"), "imagenet")


def test_kinetics_weights_from_a_url(
    hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = model("TSM", "flow", backbone="resnet50")
    state = {f"module.{k}": v for k, v in source.state_dict().items() if not k.startswith("new_fc")}
    state["module.new_fc.weight"] = torch.zeros(400, 2048)
    state["module.new_fc.bias"] = torch.zeros(400)
    published = tmp_path / "published"
    published.mkdir()
    torch.save(
        {"epoch": 50, "arch": "resnet50", "state_dict": state, "best_prec1": np.float64(72.5)},
        published / "TSM_kinetics_Flow_x.pth",
    )
    monkeypatch.setattr(
        pretrained_module, "KINETICS_TSM_URL", f"file://{published}/TSM_kinetics_{{modality}}_x.pth"
    )
    target = model("TSM", "flow", backbone="resnet50")
    load_pretrained(target, "kinetics")
    loaded = target.state_dict()
    assert torch.equal(loaded["base_model.conv1.weight"], state["module.base_model.conv1.weight"])
    assert torch.equal(
        loaded["base_model.layer3.5.conv1.net.weight"],
        state["module.base_model.layer3.5.conv1.net.weight"],
    )
    assert loaded["new_fc.weight"].shape == (397, 2048)
    assert (hub / "TSM_kinetics_Flow_x.pth").is_file()  # cached for next time
    with pytest.raises(EpicArError, match="TSM with resnet50 only"):
        load_pretrained(model("TSN"), "kinetics")


def test_local_files_and_bad_names(tmp_path: Path) -> None:
    reference = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(reference, tmp_path / "resnet18.pth")
    tsn = model("TSN")
    load_pretrained(tsn, str(tmp_path / "resnet18.pth"))
    assert torch.equal(tsn.state_dict()["base_model.conv1.weight"], reference["conv1.weight"])
    del reference["layer2.0.bn1.weight"]
    torch.save(reference, tmp_path / "partial.pth")
    with pytest.raises(
        EpicArError, match=r"lacks backbone weights \['base_model.layer2.0.bn1.weight'\]"
    ):
        load_pretrained(model("TSN"), str(tmp_path / "partial.pth"))
    with pytest.raises(EpicArError, match="not imagenet, kinetics or an existing file"):
        load_pretrained(model("TSN"), "imagnet")


def test_download_command_fetches_checks_and_stores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = filled_skeleton("tsn_flow", tmp_path / "mirror.ckpt")
    out = tmp_path / "checkpoints"
    assert main(["download", "tsn_flow", str(out), "--url", f"file://{source}"]) == 0
    assert (out / "tsn_flow.ckpt").read_bytes() == source.read_bytes()
    assert "checked and stored" in capsys.readouterr().out
    assert main(["download", "tsn_flow", str(out), "--url", f"file://{source}"]) == 1  # exists
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    assert main(["download", "tsn_rgb", str(out), "--url", f"file://{broken}"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["tsn_flow.ckpt"]  # nothing partial left
    assert main(["download", "tsn_rgb", str(out), "--url", f"file://{tmp_path}/absent"]) == 1
    assert "could not download" in capsys.readouterr().err


def test_weights_files_and_checkpoints_read_as_state_dicts(tmp_path: Path) -> None:
    from epic_ar.fileio.safe_pickle import RefusedGlobalError
    from epic_ar.models.weights import read_model_state
    from helpers.bad_input import OPEN
    from helpers.results_files import CreatesFile

    weight = torch.arange(6.0).reshape(2, 3)
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"epoch": 3, "state_dict": {"module.model.fc.weight": weight}}, wrapped)
    for checkpoint in (True, False):
        state = read_model_state(wrapped, checkpoint=checkpoint)
        assert list(state) == ["fc.weight"] and torch.equal(state["fc.weight"], weight)

    # Each kind of file keeps its own words for what is wrong with it.
    not_weights = tmp_path / "numbers.pt"
    torch.save({"state_dict": {"fc.weight": 1}}, not_weights)
    with pytest.raises(EpicArError) as caught:
        read_model_state(not_weights, checkpoint=False)
    assert str(caught.value) == f"{not_weights}: holds no state dict of tensors"
    with pytest.raises(EpicArError) as caught:
        read_model_state(not_weights)
    assert str(caught.value) == (
        f"{not_weights}: neither a state dict nor a checkpoint with a 'state_dict'"
    )
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(EpicArError, match=r"garbage\.pt: not a readable weights file \("):
        read_model_state(garbage, checkpoint=False)
    with pytest.raises(EpicArError, match=r"garbage\.pt: not a readable checkpoint \("):
        read_model_state(garbage)
    hostile = tmp_path / "hostile.pt"
    torch.save({"fc.weight": weight, "payload": CreatesFile(tmp_path / "pwned")}, hostile)
    with pytest.raises(RefusedGlobalError) as refused:
        read_model_state(hostile, checkpoint=False)
    assert str(refused.value) == (
        f"{hostile}: refused to load '{OPEN}': a weights file may hold tensors, numpy arrays "
        "and plain containers only (nothing it names was run)"
    )
    assert not (tmp_path / "pwned").exists()
