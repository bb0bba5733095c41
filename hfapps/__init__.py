"""hfapps: one call to run sentiment, classification, summarization, translation or extractive QA
over your texts; one YAML recipe to fine-tune; on transformers 5, offline first.

Importing hfapps is cheap: torch and transformers load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "sentiment": "api",
    "classify": "api",
    "summarize": "api",
    "translate": "api",
    "answer": "api",
    "load": "api",
    "clear_cache": "api",
    "Client": "client",
    "export_model": "export",
    "HfappsError": "errors",
    "InputError": "errors",
    "ModelLoadError": "errors",
    "TaskMismatchError": "errors",
    "UnsupportedLanguageError": "errors",
    "OutOfMemoryError": "errors",
    "ServerError": "errors",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .api import answer, classify, clear_cache, load, sentiment, summarize, translate
    from .client import Client
    from .export import export as export_model
    from .errors import (HfappsError, InputError, ModelLoadError, OutOfMemoryError, ServerError, TaskMismatchError,
                         UnsupportedLanguageError)


def __getattr__(name: str) -> Any:
    if name == "export_model":  # hfapps.export is the module (`import hfapps.export` sets that attribute)
        return importlib.import_module(".export", __name__).export
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'hfapps' has no attribute {name!r}")
