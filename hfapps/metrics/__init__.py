"""evaluate modules that work offline: each folder holds an `evaluate.Metric` subclass.

`evaluate.load("accuracy")` needs the Hub; `hfapps.metrics.load("accuracy")` loads the copy here
(`evaluate.load(path)` on its folder), so metrics work with no network.
"""

from __future__ import annotations

import os

NAMES = ("accuracy", "precision_recall_f1", "confusion_matrix", "rouge", "sacrebleu", "chrf", "squad", "retrieval")
HERE = os.path.dirname(os.path.abspath(__file__))


def path(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"Unknown metric {name!r}; hfapps ships {', '.join(NAMES)}.")
    return os.path.join(HERE, name)


def load(name: str):
    """An `evaluate.EvaluationModule` for one of `NAMES`, loaded from this package (no network)."""
    import evaluate

    return evaluate.load(path(name))
