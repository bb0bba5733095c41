"""hfapps: one call to run sentiment, classification, summarization, translation, extractive QA or a chat model
over your texts; one YAML recipe to fine-tune; one command to export and serve; on transformers 5, offline first.

Importing hfapps is cheap: torch and transformers load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> "module:attribute" it comes from (loaded on first use).
_EXPORTS = {
    "sentiment": "api:sentiment",
    "classify": "api:classify",
    "summarize": "api:summarize",
    "translate": "api:translate",
    "answer": "api:answer",
    "chat": "api.language:chat",
    "generate": "api.language:generate",
    "embed": "retrieval.helpers:embed",
    "rerank": "retrieval.helpers:rerank",
    "Index": "retrieval.index:Index",
    "ask": "retrieval.ask:ask",
    "load": "api:load",
    "clear_cache": "api:clear_cache",
    "train": "training.runner:train",
    "Client": "serving.client:Client",
    "export_model": "compress.export:export",
    **{
        name: f"errors:{name}"
        for name in (
            "HfappsError",
            "InputError",
            "ModelLoadError",
            "TaskMismatchError",
            "UnsupportedLanguageError",
            "OutOfMemoryError",
            "ServerError",
            "RecipeError",
            "DataError",
            "NonFiniteLossError",
            "ExportError",
            "IndexDamagedError",
            "IndexMismatchError",
        )
    },
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:  # what the names are, for type checkers and editors (re-exported: "import X as X")
    from .api import answer as answer
    from .api import classify as classify
    from .api import clear_cache as clear_cache
    from .api import load as load
    from .api import sentiment as sentiment
    from .api import summarize as summarize
    from .api import translate as translate
    from .api.language import chat as chat
    from .api.language import generate as generate
    from .compress.export import export as export_model  # noqa: F401 (re-exported under another name)
    from .errors import DataError as DataError
    from .errors import ExportError as ExportError
    from .errors import HfappsError as HfappsError
    from .errors import IndexDamagedError as IndexDamagedError
    from .errors import IndexMismatchError as IndexMismatchError
    from .errors import InputError as InputError
    from .errors import ModelLoadError as ModelLoadError
    from .errors import NonFiniteLossError as NonFiniteLossError
    from .errors import OutOfMemoryError as OutOfMemoryError
    from .errors import RecipeError as RecipeError
    from .errors import ServerError as ServerError
    from .errors import TaskMismatchError as TaskMismatchError
    from .errors import UnsupportedLanguageError as UnsupportedLanguageError
    from .retrieval.ask import ask as ask
    from .retrieval.helpers import embed as embed
    from .retrieval.helpers import rerank as rerank
    from .retrieval.index import Index as Index
    from .serving.client import Client as Client
    from .training.runner import train as train


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hfapps' has no attribute {name!r}")
    module, _, attribute = _EXPORTS[name].partition(":")
    return getattr(importlib.import_module(f".{module}", __name__), attribute)
