"""`hfapps export MODEL OUTPUT_DIR`: its flags, and the line it prints (the logic is `hfapps.compress.export`).

hfapps export runs/sentiment runs/sentiment-int8 --format onnx --quantize int8
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..compress.export import FORMATS, QUANTIZE, export


def add(sub: Any) -> None:
    parser = sub.add_parser("export", help="export a model to ONNX Runtime or CTranslate2 (int8 optional)")
    parser.add_argument("model", help="a `hfapps train` folder, a Hub id, a local folder or a GGUF file")
    parser.add_argument("output_dir", help="the folder to write (new, or an earlier export with --overwrite)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="onnx (encoder tasks) or ctranslate2 (summarize, translate, chat); default: by model",
    )
    parser.add_argument("--quantize", choices=QUANTIZE, default="none", help="int8 weights (smaller, faster on CPU)")
    parser.add_argument("--task", default=None, help="the task the export runs (default: from the model)")
    parser.add_argument(
        "--calibration-file",
        default=None,
        help='ONNX int8: texts to measure activations on (a "text" column; "question" and '
        '"context" for QA; first 512 rows). Default: hfapps\' sample data',
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in output_dir")
    parser.add_argument(
        "--no-measure",
        dest="measure",
        action="store_false",
        help="skip measuring speed and agreement against the source model",
    )
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    measured = export(
        args.model,
        args.output_dir,
        format=args.format,
        quantize=args.quantize,
        task=args.task,
        trust_remote_code=args.trust_remote_code,
        overwrite=args.overwrite,
        measure=args.measure,
        calibration_file=args.calibration_file,
    )
    card = f"model card: {os.path.join(args.output_dir, 'README.md')}"
    if "agreement" in measured:  # labels: the share of the sample given the source's label
        found = f": {measured['agreement']:.1%} agreement with the source on the {measured['task']} sample"
    elif "summary" in measured:  # vectors or scores: how close they are to the source's, against a tolerance
        found = f": {measured['summary']}"
    else:
        found = ""
    speed = f", {measured['speedup']}x its speed ({card})" if found else ""
    print(f"Exported {args.model} to {args.output_dir}{found}{speed}", file=sys.stderr)
    return 0
