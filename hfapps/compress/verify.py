"""An export is kept only if it runs: it is loaded as a user would load it and run on its task's sample. Then, when
asked, it is measured against its source model on the same sample: agreement and speed, for the model card."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..api import load
from ..errors import ExportError, HfappsError
from ..tasks import Task

logger = logging.getLogger("hfapps")


def check_and_measure(
    source: str, exported: str, cls: type[Task], trust_remote_code: bool, measure: bool
) -> dict[str, Any]:
    """Run `cls`'s sample on the export in `exported`: an export that cannot run it is refused (`ExportError`; the
    caller removes it). Then, when `measure`, its speed and agreement against the source model on that sample."""
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
        return _compare(source, helper, cls, inputs, options, trust_remote_code) if measure else {}
    finally:
        logger.setLevel(quiet)


def _compare(
    source: str,
    export_helper: Any,
    cls: type[Task],
    inputs: list[Any],
    options: dict[str, Any],
    trust_remote_code: bool,
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
    key = cls.agreement_key
    same = [(a.get(key) == b.get(key)) if key else a == b for a, b in zip(outputs["source"], outputs["export"])]
    report.update(
        agreement=round(sum(same) / len(same), 4),
        source_seconds=round(seconds["source"], 3),
        export_seconds=round(seconds["export"], 3),
        speedup=round(seconds["source"] / max(seconds["export"], 1e-9), 2),
    )
    if all(isinstance(out, dict) and isinstance(out.get("score"), float) for out in outputs["source"]):
        report["largest_score_gap"] = round(
            max(abs(a["score"] - b["score"]) for a, b in zip(outputs["source"], outputs["export"])), 4
        )
    return report
