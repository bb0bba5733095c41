"""The model card (`README.md`) an export carries: what it is, its size and speed against its source, how much of
the source's output it reproduces, how int8 was made, and what int8 runs as on the CPU that loads it."""

from __future__ import annotations

import os
from typing import Any

from ..cpu import cpu
from ..runtimes import ct2, onnx
from ..tasks import Task


def write_card(folder: str, source: str, cls: type[Task], runtime: dict[str, Any], report: dict[str, Any]) -> None:
    size_share = runtime["weights_mb"] / max(runtime["source_weights_mb"], 1e-9)
    task = cls.name
    lines = [
        f"# {os.path.basename(source.rstrip('/'))}: {runtime['format']}, {runtime['quantize']}",
        "",
        f"Exported by `hfapps export` from `{source}` for {task}, to run on {runtime['format']} "
        f"({', '.join(f'{k} {v}' for k, v in runtime['versions'].items())}).",
        "",
        "| | source (PyTorch, float32) | this export |",
        "| --- | --- | --- |",
        f"| weights | {runtime['source_weights_mb']} MB | {runtime['weights_mb']} MB ({size_share:.0%}) |",
    ]
    if "speedup" in report:
        lines.append(
            f"| time for the sample ({report['sample']} inputs) | {report['source_seconds']} s | "
            f"{report['export_seconds']} s ({report['speedup']}x) |"
        )
    if "compared" in report:
        lines += [
            "",
            closeness(report, task) + f" Speed was measured once, on the machine that exported it: {cpu().describe()}.",
        ]
    elif "agreement" in report:
        what = f"{cls.agreement_key}s" if cls.agreement_key else "outputs"
        gap = f" (largest score gap {report['largest_score_gap']})" if "largest_score_gap" in report else ""
        lines += [
            "",
            f"On hfapps' sample data for {task}, {report['agreement']:.1%} of the {what} are identical to the "
            f"source model's{gap}. Speed was measured once, on the machine that exported it: "
            f"{cpu().describe()}.",
        ]
    elif report.get("skipped"):
        lines += ["", f"Not measured: {report['skipped']}."]
    if "smoothing" in runtime:
        smoothing = runtime["smoothing"]
        scheme = runtime.get("int8", {}).get("scheme", "dynamic")
        how = (
            "static quantization (activation scales calibrated on the same inputs, so a text's result does not "
            "depend on its batch)"
            if scheme == "static"
            else "dynamic quantization (activation scales per batch)"
        )
        lines += [
            "",
            f"int8 by ONNX Runtime's {how}, after smoothing the activations of {smoothing['products']} matrix "
            f"products (alpha {smoothing['alpha']}) with scales measured on {smoothing['calibration_inputs']} "
            f"inputs from {smoothing['calibration']}.",
        ]
    if runtime["quantize"] == "int8":
        plan = onnx.int8_plan if runtime["format"] == "onnx" else ct2.int8_plan
        lines += [
            "",
            f"What int8 runs as depends on the CPU that loads it (`hfapps env` says for yours). On the CPU "
            f"that exported it ({cpu().int8_kernels}): {plan(cpu())}.",
        ]
    lines += [
        "",
        "Load it like any model:",
        "",
        "```python",
        "import hfapps",
        f'hfapps.load({task!r}, model="path/to/this/folder")',
        "```",
        "",
    ]
    with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def closeness(report: dict[str, Any], task: str) -> str:
    """How close an export's float outputs are to its source's, in words (`verify.vectors` / `verify.scores`)."""
    verdict = "within" if report["within_tolerance"] else "OUTSIDE"
    if report["compared"] == "cosine":
        return (
            f"On hfapps' sample data for {task} ({report['sample']} texts), the cosine of each vector to the source "
            f"model's is at least {report['min_cosine']:.6f} (mean {report['mean_cosine']:.6f}): {verdict} the "
            f"tolerance of {report['tolerance']}."
        )
    return (
        f"On hfapps' sample data for {task} ({report['queries']} queries, {report['sample']} query-document pairs), "
        f"the scores differ from the source model's by at most {report['max_abs_difference']:.6f} ({verdict} the "
        f"tolerance of {report['tolerance']}); {report['same_ranking']:.1%} of the queries rank their documents "
        f"in the same order, and {report['same_first']:.1%} put the same document first."
    )
