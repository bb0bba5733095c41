"""An export is kept only if it runs: it is loaded as a user would load it and run on its task's sample. Then, when
asked, it is measured against its source model on the same sample, for the model card: its speed, and how much of
the source's output it reproduces. Labels and answers are compared as they are (agreement); float outputs never
are, as two floats are almost never equal: vectors (an embedder's) by their cosine to the source's, scores (a
reranker's) by their largest difference and by how each query's documents are ranked, each against a tolerance."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from ..api import load
from ..errors import ExportError, HfappsError
from ..tasks import Task

logger = logging.getLogger("hfapps")


#: The least cosine of every sample text's vector to its source's, by the export's number format. float32 differs
#: from PyTorch by the order of its sums only (1 - 1e-7 measured). int8, measured on the packaged MiniLM over hfapps'
#: 128 sample reviews and 41 sample paragraphs (AVX-512 VNNI): min 0.9978, mean 0.9991, every vector nearest its own
#: text's float32 vector (on 2,000 SQuAD texts: 0.9985 / 0.9992, benchmarks/bench_embed.py); 0.99 leaves room for
#: other texts and CPUs and still catches a broken graph (wrong tokens pooled, a scale lost: far under 0.9).
COSINE_TOLERANCE = {"none": 0.9999, "int8": 0.99}
#: The largest difference of a score (a cross-encoder's sigmoid, in [0, 1]) from its source's.
SCORE_TOLERANCE = {"none": 1e-4, "int8": 0.05}


def check_and_measure(
    source: str,
    exported: str,
    cls: type[Task],
    trust_remote_code: bool,
    measure: bool,
    quantize: str = "none",
) -> dict[str, Any]:
    """Run `cls`'s sample on the export in `exported`: an export that cannot run it is refused (`ExportError`; the
    caller removes it). Then, when `measure`, its speed and its closeness to the source model on that sample,
    judged against the tolerances of `quantize` for float outputs."""
    inputs, options = cls.sample_inputs()
    quiet = logger.level
    logger.setLevel(logging.ERROR)  # the sample's truncation warnings say nothing about the export
    try:
        try:
            helper = load(cls.name, exported, trust_remote_code=trust_remote_code, progress=False)  # type: ignore[arg-type]
            options = {**options, **helper.sample_options()}
            helper(inputs[:2], **options)
        except Exception as err:  # whatever stops it, the export is not usable as written
            raise ExportError(
                f"The export was written but could not run the {cls.name} sample when loaded, so it "
                f"was not kept: {type(err).__name__}: {err}"
            ) from err
        return _compare(source, helper, cls, inputs, options, trust_remote_code, quantize) if measure else {}
    finally:
        logger.setLevel(quiet)


def _compare(
    source: str,
    export_helper: Any,
    cls: type[Task],
    inputs: list[Any],
    options: dict[str, Any],
    trust_remote_code: bool,
    quantize: str,
) -> dict[str, Any]:
    report: dict[str, Any] = {"task": cls.name, "sample": len(inputs)}
    outputs, seconds = {}, {}
    for name in ("source", "export"):
        try:
            task: Any = cls.name  # any registered name, not only the helpers' literal ones
            helper = (
                export_helper
                if name == "export"
                else load(task, source, trust_remote_code=trust_remote_code, progress=False)
            )
            helper(inputs[:4], **options)  # warm-up
            start = time.perf_counter()
            outputs[name] = helper(inputs, **options)
            seconds[name] = time.perf_counter() - start
        except HfappsError as err:
            report["skipped"] = f"the {name} model could not run the {cls.name} sample: {err}"
            return report
    report.update(
        source_seconds=round(seconds["source"], 3),
        export_seconds=round(seconds["export"], 3),
        speedup=round(seconds["source"] / max(seconds["export"], 1e-9), 2),
    )
    source_out, export_out = outputs["source"], outputs["export"]
    if _floats(source_out[0]) and _floats(source_out):  # one vector per input
        report.update(vectors(source_out, export_out, COSINE_TOLERANCE[quantize]))
        report["summary"] = f"vectors' cosine to the source's at least {report['min_cosine']:.5f}"
    elif _floats(source_out):  # one score per input
        query = cls.input_fields[0] if cls.input_fields else None
        groups = [item[query] if query and isinstance(item, dict) else 0 for item in inputs]
        report.update(scores(source_out, export_out, groups, SCORE_TOLERANCE[quantize]))
        report["summary"] = (
            f"scores within {report['max_abs_difference']:.5f} of the source's, "
            f"{report['same_ranking']:.0%} of the queries ranked in the same order"
        )
    if "compared" in report:
        verdict = "within" if report["within_tolerance"] else "OUTSIDE"
        report["summary"] += f" ({verdict} the tolerance of {report['tolerance']}) on the {cls.name} sample"
        return report
    key = cls.agreement_key
    same = [(a.get(key) == b.get(key)) if key else a == b for a, b in zip(outputs["source"], outputs["export"])]
    report["agreement"] = round(sum(same) / len(same), 4)
    if all(isinstance(out, dict) and isinstance(out.get("score"), float) for out in outputs["source"]):
        report["largest_score_gap"] = round(
            max(abs(a["score"] - b["score"]) for a, b in zip(outputs["source"], outputs["export"])), 4
        )
    return report


def _floats(values: Any) -> bool:
    return isinstance(values, list) and bool(values) and all(isinstance(v, (float, list)) for v in values)


def vectors(source: Any, exported: Any, tolerance: float) -> dict[str, Any]:
    """The cosine of each exported vector to its source's: least and mean, and whether the least reaches
    `tolerance`."""
    a, b = np.asarray(source, dtype=np.float64), np.asarray(exported, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosine = (a * b).sum(axis=1) / np.maximum(norms, 1e-12)
    return {
        "compared": "cosine",
        "min_cosine": round(float(cosine.min()), 6),
        "mean_cosine": round(float(cosine.mean()), 6),
        "tolerance": tolerance,
        "within_tolerance": bool(cosine.min() >= tolerance),
    }


def scores(source: Any, exported: Any, groups: list[Any], tolerance: float) -> dict[str, Any]:
    """Scores against their source's: the largest difference (within `tolerance`?), and for each group of inputs
    (a query's documents) whether the export ranks them in the same order, and puts the same one first."""
    a, b = np.asarray(source, dtype=np.float64), np.asarray(exported, dtype=np.float64)
    members: dict[Any, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    same_order = same_first = 0
    for rows in members.values():
        ours, theirs = np.argsort(-a[rows], kind="stable"), np.argsort(-b[rows], kind="stable")
        same_order += bool((ours == theirs).all())
        same_first += bool(ours[0] == theirs[0])
    gap = float(np.abs(a - b).max())
    return {
        "compared": "scores",
        "max_abs_difference": round(gap, 6),
        "queries": len(members),
        "same_ranking": round(same_order / len(members), 4),
        "same_first": round(same_first / len(members), 4),
        "tolerance": tolerance,
        "within_tolerance": gap <= tolerance,
    }
