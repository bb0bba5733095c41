"""Fast inference runtimes for exported models: ONNX Runtime (encoders) and CTranslate2 (generation).

An exported folder looks like any model folder to the rest of hfapps (a `config.json` with the label maps,
the tokenizer, `hfapps.json` with the task settings) plus the runtime's own files; `hfapps.json` names the
runtime under "runtime". `Task._load` asks `load_model` here for such a folder, and gets an object the task's
pipeline runs exactly as it runs a PyTorch model: the same batching, results and order.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

from packaging.version import Version

from ..errors import ModelLoadError

#: The layout of an exported folder; a folder written by a later layout is refused, not misread.
EXPORT_VERSION = 1

#: runtime name -> (the package that runs it, the hfapps extra that installs it, what that extra installs)
RUNTIMES = {"onnx": ("onnxruntime", "onnx", "onnxruntime onnx"), "ctranslate2": ("ctranslate2", "ct2", "ctranslate2")}


def runtime_of(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The "runtime" entry of an exported folder's `hfapps.json`, or None for a PyTorch model."""
    runtime = meta.get("runtime")
    return runtime if isinstance(runtime, dict) else None


def require(runtime: str) -> Any:
    """Import the runtime's package, or say which extra installs it."""
    package, extra, packages = RUNTIMES[runtime]
    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise ModelLoadError(
            f"This needs {package}, which is not installed: pip install {packages} (the hfapps[{extra}] extra)."
        ) from err


def check_versions(runtime: dict[str, Any], name: str) -> None:
    """Refuse an export made by a newer hfapps layout or a newer runtime than the one installed here."""
    layout = runtime.get("export_version", 0)
    if layout > EXPORT_VERSION:
        raise ModelLoadError(
            f"{name!r} was exported by a newer hfapps (export layout {layout}; this one reads up to "
            f"{EXPORT_VERSION}). Upgrade hfapps, or export the model again with this one."
        )
    format_ = runtime.get("format")
    if format_ not in RUNTIMES:
        raise ModelLoadError(f"{name!r} names an unknown runtime {format_!r}; hfapps runs {', '.join(RUNTIMES)}.")
    package = RUNTIMES[format_][0]
    require(format_)
    made_with, here = runtime.get("versions", {}).get(package), importlib.metadata.version(package)
    if made_with and _release(made_with) > _release(here):
        raise ModelLoadError(
            f"{name!r} was exported with {package} {made_with}, newer than the {here} installed "
            f"here, which may not read it. Upgrade it: pip install -U {package} "
            f"(or export the model again with this version)."
        )


def _release(version: str) -> tuple[int, ...]:
    return Version(version).release[:2]


def load_model(ref: Any, config: Any, meta: dict[str, Any], auto_class: Any, device: Any) -> Any:
    """The exported model in `ref`'s folder, as an object the task's pipeline can run."""
    runtime = runtime_of(meta)
    assert runtime is not None
    check_versions(runtime, ref.name)
    if runtime["format"] == "onnx":
        from .onnx import OnnxModel

        return OnnxModel.load(ref, config, runtime, auto_class, device)
    from .ct2 import Ct2Model

    return Ct2Model.load(ref, config, runtime, auto_class, device)
