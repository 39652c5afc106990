"""`epic-ar export MODEL OUT.onnx`: a recogniser as ONNX, checked with ONNX Runtime."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from epic_ar.cli.arguments import add_checkpoint_arguments, positive_int


def add_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser(
        "export",
        help=help_text,
        description="Write a TSN, TRN or TSM checkpoint as an ONNX file. Input 'frames': "
        "float32 [B, T, C, S, S] normalised as the checkpoint's data config normalises "
        "(with --with-preprocessing: uint8, normalised in the graph); outputs 'verb' "
        "[B, 97] and 'noun' [B, 300], the logits before softmax. TRN is exported with its "
        "deterministic 'expected' evaluation. After writing, ONNX Runtime (CPU) runs the "
        "file at batch 1 and 3 on random inputs; a file whose outputs differ from "
        "PyTorch's by more than 1e-4 of their scale is removed. Needs the export extra "
        "(pip install 'epic-ar[export]').",
    )
    parser.add_argument("model", metavar="MODEL",
                        help="a checkpoint file, or a published name (tsm_rgb, ...)")  # fmt: skip
    parser.add_argument("out", type=Path, metavar="OUT", help="the .onnx file to write")
    parser.add_argument(
        "--frames",
        dest="frame_count",
        type=positive_int,
        metavar="T",
        help="frames per input, TSN only (default: the checkpoint's test frame count; TSM and "
        "TRN take the count they were built with)",
    )
    parser.add_argument("--batch", dest="batch_size", type=positive_int, metavar="B",
                        help="with --static-batch: the fixed batch size (default 1)")  # fmt: skip
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument("--dynamic-batch", dest="dynamic_batch", action="store_true",
                       default=True, help="any batch size B (the default)")  # fmt: skip
    batch.add_argument("--static-batch", dest="dynamic_batch", action="store_false",
                       help="a fixed batch size, --batch")  # fmt: skip
    parser.add_argument("--opset", type=positive_int, metavar="N",
                        help="ONNX opset (default: the exporter's)")  # fmt: skip
    parser.add_argument("--with-preprocessing", action="store_true",
                        help="take uint8 frames and normalise them in the graph")  # fmt: skip
    add_checkpoint_arguments(parser, published=True)
    parser.add_argument("--force", action="store_true", help="overwrite OUT")
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    from epic_ar.export.onnx import ExportOptions, export_onnx

    if args.batch_size is not None and args.dynamic_batch:
        args.parser.error("--batch B sets the fixed batch of --static-batch; add --static-batch")
    options = ExportOptions(
        frame_count=args.frame_count,
        batch_size=args.batch_size or 1,
        dynamic_batch=args.dynamic_batch,
        opset=args.opset,
        with_preprocessing=args.with_preprocessing,
        trust=args.trust,
        url=args.url,
        force=args.force,
    )
    start = time.monotonic()
    report = export_onnx(args.model, args.out, options)
    shape = ", ".join("B" if size < 0 else str(size) for size in report.input_shape)
    batch = "B" if report.input_shape[0] < 0 else str(report.input_shape[0])
    seconds = time.monotonic() - start
    print(f"wrote {report.out} (opset {report.opset}) in {seconds:.1f} s: frames "
          f"{report.input_dtype} [{shape}] -> verb [{batch}, 97], noun [{batch}, 300]")  # fmt: skip
    print(f"  frames: {report.input_notes['epic_ar.channels']}")
    print(f"  normalisation: {report.input_notes['epic_ar.normalisation']}")
    print(f"ONNX Runtime against PyTorch at batch {', '.join(map(str, report.batches))}: largest "
          f"difference {report.max_difference:.2g} (outputs up to {report.scale:.3g})")  # fmt: skip
    return 0
