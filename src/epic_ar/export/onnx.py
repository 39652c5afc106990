"""`export`: a recogniser as an ONNX file, checked against PyTorch with ONNX Runtime.

The graph takes `frames` [B, T, C, S, S] float32, normalised as the checkpoint's data
config normalises (or, with preprocessing, uint8 frames that the graph normalises), and
gives `verb` [B, 97] and `noun` [B, 300]: the model's logits, before any softmax. It is
written by torch's dynamo exporter; TSM's shift is exported as slices and concatenations
(`models.temporal_shift.shift_by_concatenation`), and TRN with its deterministic `expected`
evaluation. The file records how its input is normalised (metadata `epic_ar.*`).
After writing, ONNX Runtime (CPU) runs the file at two batch sizes on random inputs; a
file whose outputs differ from PyTorch's by more than `tolerance` times the outputs' scale
is removed and refused.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from epic_ar.annotations.classes import N_VERBS
from epic_ar.data.transforms import normalize
from epic_ar.errors import EpicArError, Parameter
from epic_ar.fileio.atomic import atomic_write_path, check_can_write
from epic_ar.modality import Modality, config_modality
from epic_ar.models import load_checkpoint
from epic_ar.models.video_model import VideoModel
from epic_ar.prediction.predict import resolve_checkpoint
from epic_ar.training.run_config import parse_data_config

EXTRA = ("onnx", "onnxscript", "onnxruntime")
INSTALL = "pip install 'epic-ar[export]'"
CHECK_BATCHES = (1, 3)  # batch sizes the parity check runs a dynamic-batch file at
OPSET = Parameter("opset", metavar="N")
MIN_OPSET = 18  # the oldest opset torch's dynamo exporter writes
EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")


@dataclass(frozen=True)
class ExportOptions:
    """How `export_onnx` writes a model.

    `frame_count`: T (None: the checkpoint's test frame count, `data.test_frame_count`
    or else `data.frame_count`; TSM and TRN only take the count they were built with).
    `batch_size`: the batch of the example input (the fixed batch without
    `dynamic_batch`). `opset`: the ONNX opset (None: the exporter's default).
    `with_preprocessing`: uint8 input, normalised inside the graph. `tolerance`: the
    largest difference from PyTorch accepted, relative to the outputs' scale. `trust`,
    `url`, `cache_dir`: as `predict`. `force`: overwrite OUT.
    """

    frame_count: int | None = None
    batch_size: int = 1
    dynamic_batch: bool = True
    opset: int | None = None
    with_preprocessing: bool = False
    tolerance: float = 1e-4
    trust: bool = False
    url: str | None = None
    cache_dir: Path | None = None
    force: bool = False


@dataclass(frozen=True)
class ExportReport:
    """What was written: `out`, its `opset`, its input (`input_shape`, -1 for the dynamic
    batch; `input_dtype`; `input_notes`: how the input is laid out and normalised, also
    stored in the file's metadata), and the parity check: the largest difference from
    PyTorch over `batches`, and the outputs' scale (their largest magnitude)."""

    out: Path
    opset: int
    input_shape: tuple[int, ...]
    input_dtype: str
    input_notes: dict[str, str]
    batches: tuple[int, ...]
    max_difference: float
    scale: float


def input_notes(config: dict[str, Any], with_preprocessing: bool) -> dict[str, str]:
    """How an exported graph's `frames` input is laid out and normalised, as metadata:
    `epic_ar.channels` and `epic_ar.normalisation`."""
    modality = config_modality(config.get("modality", "RGB"), "config: modality")
    data = parse_data_config(dict(config.get("data", {})))
    pre = data.preprocessing
    if modality == "rgb":
        channels = "RGB frames, C = 3 in R, G, B order"
    else:
        pairs = data.segment_length or 5
        channels = (f"flow, C = {2 * pairs}: {pairs} (u, v) frame pairs per snippet, "
                    "in the order u1, v1, u2, v2, ...")  # fmt: skip
    if with_preprocessing:
        normalisation = "none: uint8 frames as decoded; the graph normalises them"
    else:
        order = "reversed to B, G, R, then " if pre.bgr and modality == "rgb" else ""
        scaled = "x / 255" if pre.rescale else "x"
        normalisation = (f"float32: {order}({scaled} - mean) / std per channel, mean "
                         f"{list(pre.mean)}, std {list(pre.std)}")  # fmt: skip
    return {"epic_ar.channels": channels, "epic_ar.normalisation": normalisation}


class Logits(nn.Module):
    """[B, T, C, S, S] float frames -> (verb [B, 97], noun [B, 300]) logits; with
    `preprocessing` (mean, std, rescale, bgr), uint8 frames normalised first."""

    def __init__(self, model: VideoModel, preprocessing: dict[str, Any] | None = None):
        super().__init__()
        self.model, self.preprocessing = model, preprocessing

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.preprocessing is not None:
            frames = normalize(frames, **self.preprocessing)
        scores = self.model(frames)
        return scores[:, :N_VERBS], scores[:, N_VERBS:]


def first_line(error: Exception) -> str:
    """`Type: first line of the message`, for one-line reports of a library's errors."""
    text = str(error).splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def require_extra() -> None:
    """Refuse in one line when the `export` extra is not installed.

    Raises:
        EpicArError: naming the missing module and how to install them.
    """
    for name in EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            raise EpicArError(f"exporting needs {name} (the export extra): {INSTALL}") from None


def logits_module(
    model: VideoModel, config: dict[str, Any], options: ExportOptions
) -> tuple[Logits, tuple[int, ...], torch.dtype]:
    """The module to export, its input shape [B, T, C, S, S] and dtype."""
    modality: Modality = config_modality(config.get("modality", "RGB"), "config: modality")
    data = parse_data_config(dict(config.get("data", {})))
    frame_count = options.frame_count or data.test_frame_count or data.frame_count
    model.set_frame_count(frame_count)
    if model.config.type == "MTRN":
        model.set_trn_eval("expected")
    pre = data.preprocessing
    preprocessing = (
        {"mean": pre.mean, "std": pre.std, "rescale": pre.rescale,
         "bgr": pre.bgr and modality == "rgb"}
        if options.with_preprocessing else None
    )  # fmt: skip
    size = pre.input_size
    shape = (options.batch_size, frame_count, model.spec.channels, size, size)
    dtype = torch.uint8 if options.with_preprocessing else torch.float32
    return Logits(model.eval(), preprocessing).eval(), shape, dtype


def example_input(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return torch.randn(shape, generator=generator)


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """The exporter's warnings, prints and INFO logs (hundreds of lines for TSM) hidden."""
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            for logger in loggers:
                logger.setLevel(logging.ERROR)
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def write_onnx(
    module: Logits,
    example: torch.Tensor,
    path: Path,
    options: ExportOptions,
    notes: dict[str, str],
) -> int:
    """Export `module` traced on `example` to `path`, with `notes` in the file's metadata
    (`metadata_props`); returns the opset of the default domain. One file: models over
    2 GB, which ONNX stores with external data, are not supported.

    Raises:
        EpicArError: the graph's opset is not the `options.opset` asked for (the exporter
            falls back to its own when it cannot convert); nothing is written then.
    """
    dynamic = {"frames": {0: torch.export.Dim("batch", min=1, max=4096)}}
    with quiet_exporter():
        program = torch.onnx.export(
            module,
            (example,),
            input_names=["frames"],
            output_names=["verb", "noun"],
            dynamo=True,
            dynamic_shapes=dynamic if options.dynamic_batch else None,
            opset_version=options.opset,
        )
        if program is None:
            raise EpicArError("the ONNX exporter returned no program")
        opset = int(program.model.opset_imports[""])
        if options.opset is not None and opset != options.opset:
            raise EpicArError(
                OPSET, f": the exporter cannot write opset {options.opset} (it gives opset "
                f"{opset}); nothing was kept",
            )  # fmt: skip
        program.model.metadata_props.update(notes)
        program.save(str(path))
    return opset


def parity(module: Logits, path: Path, shape: tuple[int, ...], dtype: torch.dtype,
           batches: tuple[int, ...]) -> tuple[float, float]:  # fmt: skip
    """(largest |ONNX Runtime - PyTorch| over both outputs and `batches`, the outputs'
    largest magnitude), on random inputs; the difference is infinite where ONNX Runtime
    gives another shape or a value that is not finite."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    difference, scale = 0.0, 0.0
    for seed, batch in enumerate(batches):
        frames = example_input((batch, *shape[1:]), dtype, seed + 1)
        with torch.inference_mode():
            expected = [output.numpy() for output in module(frames)]
        got = session.run(["verb", "noun"], {"frames": frames.numpy()})
        for mine, theirs in zip(got, expected, strict=True):
            scale = max(scale, float(np.abs(theirs).max()))
            if mine.shape != theirs.shape or not np.isfinite(mine).all():
                return math.inf, scale
            difference = max(difference, float(np.abs(mine - theirs).max()))
    return difference, scale


def export_onnx(
    model: str | Path, out: str | Path, options: ExportOptions = ExportOptions()
) -> ExportReport:
    """Write `model` (a checkpoint file or a published name) as the ONNX file `out`, and
    check it with ONNX Runtime against PyTorch (see the module docstring).

    Raises:
        EpicArError: the export extra is missing; a bad model, frame count or OUT; the
            exporter failed; or the file's outputs differ from PyTorch's (nothing is left).
    """
    require_extra()
    out = Path(out)
    if options.opset is not None and options.opset < MIN_OPSET:
        raise EpicArError(
            OPSET, f": {options.opset}; the exporter writes opset {MIN_OPSET} or later"
        )
    if options.batch_size < 1:
        raise EpicArError(
            Parameter("batch_size", metavar="B"), f": {options.batch_size} is not >= 1"
        )
    if out.suffix.lower() != ".onnx":  # a .pt name would be taken for a torch file
        raise EpicArError(f"{out}: the export is an ONNX model; give a name ending in .onnx")
    check_can_write(out, force=options.force)  # before minutes of exporting
    checkpoint = resolve_checkpoint(
        model, url=options.url, cache_dir=options.cache_dir, allow_flow=True
    )
    network, config = load_checkpoint(checkpoint, trust=options.trust)
    module, shape, dtype = logits_module(network, config, options)
    batches = CHECK_BATCHES if options.dynamic_batch else (options.batch_size,)
    notes = input_notes(config, options.with_preprocessing)
    with atomic_write_path(out, force=options.force) as tmp:
        try:
            # torch.export takes a size-1 dimension for a constant: trace a dynamic batch at 2
            traced = (max(2, shape[0]), *shape[1:]) if options.dynamic_batch else shape
            opset = write_onnx(module, example_input(traced, dtype, 0), tmp, options, notes)
        except EpicArError:
            raise
        except Exception as exc:  # the exporter's own errors: one line, no file
            raise EpicArError(f"{checkpoint}: the ONNX export failed ({first_line(exc)})") from exc
        try:
            difference, scale = parity(module, tmp, shape, dtype, batches)
        except Exception as exc:
            raise EpicArError(
                f"{out}: ONNX Runtime could not run the file ({first_line(exc)})"
            ) from exc
        if not difference <= options.tolerance * max(scale, 1e-12):
            raise EpicArError(
                f"{out}: ONNX Runtime's outputs differ from PyTorch's by {difference:.3g} "
                f"(outputs up to {scale:.3g}); not written"
            )
    input_shape = (-1, *shape[1:]) if options.dynamic_batch else shape
    return ExportReport(out, opset, input_shape, str(dtype).removeprefix("torch."), notes,
                        batches, difference, scale)  # fmt: skip
