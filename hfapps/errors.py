"""hfapps' own exceptions. Every error a user can cause is one of these, with the fix in its message."""

from __future__ import annotations


class HfappsError(Exception):
    """Base class of every error hfapps raises on purpose."""


class InputError(HfappsError, ValueError):
    """The texts, questions or options given to a helper are not usable."""


class ModelLoadError(HfappsError, OSError):
    """A model could not be found or loaded (missing path, Hub unreachable and not cached, unsafe weights)."""


class TaskMismatchError(HfappsError, ValueError):
    """The model has no head for the task asked of it (e.g. a seq2seq model given to `answer`)."""


class UnsupportedLanguageError(HfappsError, ValueError):
    """A translation pair the model given cannot do, or a language code hfapps does not know."""


class OutOfMemoryError(HfappsError, MemoryError):
    """A single input does not fit in the device's memory, even alone."""


class RecipeError(HfappsError, ValueError):
    """A recipe that cannot run: not a mapping, unknown keys, wrong types, bad values."""


class DataError(HfappsError, ValueError):
    """Training, evaluation or input data that cannot be used as asked."""


class IndexDamagedError(DataError):
    """An index's files are not what hfapps wrote: never searched until rebuilt."""


class IndexMismatchError(InputError):
    """An index was built with another model, dimension or hfapps layout than the one asked for."""


class NonFiniteLossError(HfappsError, RuntimeError):
    """The training loss became NaN or infinite."""


class ExportError(HfappsError):
    """An export that cannot be written, or whose result could not load and run its task (nothing is left)."""


class ServerError(HfappsError):
    """An `hfapps serve` server refused or failed a request (`status` is its HTTP status)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
