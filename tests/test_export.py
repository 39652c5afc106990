"""`epic-ar export`: ONNX files that ONNX Runtime runs with PyTorch's outputs, for TSN, TRN
and TSM, RGB and flow, at two batch sizes from one file; preprocessing in the graph; a
published-layout checkpoint; one-line refusals that leave no file."""

from __future__ import annotations

import importlib
import urllib.error
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from epic_ar.cli.main import main
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.export.onnx import ExportOptions, export_onnx
from epic_ar.modality import Modality
from epic_ar.models import load_checkpoint
from epic_ar.training.run_config import parse_data_config
from helpers.bad_input import make_read_only
from helpers.checkpoints import filled_skeleton, tiny_checkpoint

MODELS = ["tsn_rgb", "tsn_flow", "trn_rgb", "trn_flow", "tsm_rgb", "tsm_flow"]


def run_onnx(path: Path, frames: torch.Tensor) -> np.ndarray:
    """[B, 397] scores (verb, then noun) of the ONNX file on `frames`."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["frames"]
    verb, noun = session.run(["verb", "noun"], {"frames": frames.numpy()})
    assert verb.shape == (len(frames), 97) and noun.shape == (len(frames), 300)
    scores: np.ndarray = np.concatenate([verb, noun], axis=1)
    return scores


def eager_scores(checkpoint: Path, frames: torch.Tensor) -> np.ndarray:
    """The checkpoint's own forward (TRN: its expected evaluation) on normalised frames."""
    model, _ = load_checkpoint(checkpoint)
    model.set_frame_count(frames.shape[1])
    model.set_trn_eval("expected")
    with torch.no_grad():
        scores: np.ndarray = model.eval()(frames).numpy()
    return scores


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, bool], tuple[Path, Path]]:
    """(checkpoint, ONNX file) of a tiny `name` model taking 4 frames of 32x32 (TSN: 3, by
    --frames), exported once for the module; `preprocessing`: --with-preprocessing."""
    folder = tmp_path_factory.mktemp("export")
    files: dict[tuple[str, bool], tuple[Path, Path]] = {}

    def export(name: str, preprocessing: bool = False) -> tuple[Path, Path]:
        if (name, preprocessing) not in files:
            checkpoint = folder / f"{name}.ckpt"
            if not checkpoint.exists():
                tiny_checkpoint(checkpoint, name, frame_count=4)
            out = folder / f"{name}{'_pre' if preprocessing else ''}.onnx"
            extra = ["--frames", "3"] if name.startswith("tsn") else []
            extra += ["--with-preprocessing"] if preprocessing else []
            assert main(["export", str(checkpoint), str(out), *extra]) == 0
            assert list(folder.glob(".*.tmp")) == []
            files[name, preprocessing] = checkpoint, out
        return files[name, preprocessing]

    return export


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_onnx_runtime_gives_pytorch_outputs_at_two_batch_sizes(
    name: str, exported: Callable[..., tuple[Path, Path]]
) -> None:
    checkpoint, out = exported(name)
    channels = 3 if name.endswith("rgb") else 10
    frames_per_input = 3 if name.startswith("tsn") else 4
    for batch in (1, 3):
        frames = torch.randn(batch, frames_per_input, channels, 32, 32)
        expected = eager_scores(checkpoint, frames)
        got = run_onnx(out, frames)
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * scale)


@pytest.mark.slow
def test_tsm_graphs_shift_with_slices_and_concatenations(
    exported: Callable[..., tuple[Path, Path]],
) -> None:
    _, out = exported("tsm_rgb")
    operators = Counter(node.op_type for node in onnx.load(str(out)).graph.node)
    assert operators["ScatterND"] == 0 and operators["Concat"] >= 3 * 8  # 8 shifted blocks


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tsn_rgb", "tsn_flow"])
def test_preprocessing_in_the_graph_equals_normalising_first(
    name: str, exported: Callable[..., tuple[Path, Path]]
) -> None:
    checkpoint, plain = exported(name)
    _, inside = exported(name, True)
    channels = 3 if name.endswith("rgb") else 10
    frames = torch.randint(0, 256, (2, 3, channels, 32, 32), dtype=torch.uint8)
    _, config = load_checkpoint(checkpoint)
    data = parse_data_config(dict(config["data"]))
    modality: Modality = "rgb" if name.endswith("rgb") else "flow"
    normalised = EpicDataModule(data, modality=modality, batch_size=1).normalize(frames)
    expected = run_onnx(plain, normalised)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(run_onnx(inside, frames), expected, rtol=0, atol=1e-5 * scale)
    # the files say how to feed them
    notes = {p.key: p.value for p in onnx.load(str(plain)).metadata_props}
    pre = data.preprocessing
    assert notes["epic_ar.normalisation"] == (
        f"float32: (x / 255 - mean) / std per channel, mean {list(pre.mean)}, std {list(pre.std)}"
    )
    assert ("C = 3 in R, G, B order" if modality == "rgb" else "C = 10: 5 (u, v) frame pairs") \
        in notes["epic_ar.channels"]  # fmt: skip
    inside_notes = {p.key: p.value for p in onnx.load(str(inside)).metadata_props}
    assert inside_notes["epic_ar.normalisation"].startswith("none: uint8 frames as decoded")


@pytest.mark.slow
def test_a_published_layout_checkpoint_exports(tmp_path: Path) -> None:
    checkpoint = filled_skeleton("tsn_rgb", tmp_path / "tsn_rgb.ckpt")
    options = ExportOptions(frame_count=2, dynamic_batch=False)
    report = export_onnx(checkpoint, tmp_path / "tsn.onnx", options)
    assert report.input_shape == (1, 2, 3, 224, 224) and report.batches == (1,)
    assert report.input_dtype == "float32"
    assert report.max_difference <= 1e-4 * report.scale


class NotANumberSession:
    """Stands in for onnxruntime.InferenceSession: NaN logits of the right shapes."""

    def __init__(self, path: str, providers: list[str]) -> None:
        pass

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = len(feed["frames"])
        return [np.full((batch, 97), np.nan, np.float32), np.full((batch, 300), np.nan, np.float32)]


@pytest.mark.slow
def test_outputs_that_differ_from_pytorch_or_are_not_numbers_leave_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tiny_checkpoint(tmp_path / "tsn.ckpt", "tsn_rgb", frame_count=1)
    out = tmp_path / "tsn.onnx"
    args = ["export", str(checkpoint), str(out), "--frames", "1", "--static-batch"]
    monkeypatch.setattr("onnxruntime.InferenceSession", NotANumberSession)
    assert main(args) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"epic-ar export: error: {out}: ONNX Runtime's outputs differ from PyTorch's by inf "
    )
    assert line.endswith("; not written")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == [tmp_path / "tsn.ckpt"]
    assert main([*args, "--opset", "99"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "epic-ar export: error: --opset N: the exporter cannot write opset 99 (it gives "
        "opset 18); nothing was kept"
    ]
    assert list(tmp_path.iterdir()) == [tmp_path / "tsn.ckpt"]


def test_bad_requests_get_one_line_and_leave_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tsm = tiny_checkpoint(tmp_path / "tsm.ckpt", "tsm_rgb", frame_count=4)
    out = tmp_path / "out.onnx"
    assert main(["export", str(tsm), str(out), "--opset", "17"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "epic-ar export: error: --opset N: 17; the exporter writes opset 18 or later"
    ]

    def offline(url: str, **_: Any) -> Any:
        raise urllib.error.URLError("offline")

    monkeypatch.setattr("epic_ar.fileio.download.urllib.request.urlopen", offline)
    assert main(["export", "tsm_rgb", str(out)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("epic-ar export: error: could not download https://")
    assert line.endswith(": offline; without a network, give a checkpoint file, or --url URL "
                         "(e.g. file:///data/tsm_rgb.ckpt)")  # fmt: skip
    monkeypatch.undo()
    with pytest.raises(SystemExit) as usage:
        main(["export", str(tsm), str(out), "--batch", "4"])
    assert usage.value.code == 2
    assert "--batch B sets the fixed batch of --static-batch" in capsys.readouterr().err
    assert main(["export", str(tsm), str(out), "--frames", "6"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "epic-ar export: error: TSM models run with the frame count they were built with (4), not 6"
    ]
    assert main(["export", str(tmp_path / "missing.ckpt"), str(out)]) == 1
    assert "missing.ckpt: no such checkpoint file" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("")
    assert main(["export", str(tsm), str(tmp_path / "a_file" / "out.onnx")]) == 1
    assert capsys.readouterr().err.count("error:") == 1
    assert list(tmp_path.glob("*.onnx")) == [] and list(tmp_path.glob(".*.tmp")) == []

    real_import = importlib.import_module

    def no_onnxscript(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "onnxscript":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("epic_ar.export.onnx.importlib.import_module", no_onnxscript)
    assert main(["export", str(tsm), str(out)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "epic-ar export: error: exporting needs onnxscript (the export extra): "
        "pip install 'epic-ar[export]'"
    ]
    monkeypatch.undo()
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    make_read_only(read_only, monkeypatch)
    try:
        assert main(["export", str(tsm), str(read_only / "out.onnx")]) == 1
        assert f"no permission to write in {read_only}" in capsys.readouterr().err
        assert list(read_only.iterdir()) == []
    finally:
        read_only.chmod(0o755)
    assert not out.exists()
