"""The `hfapps` command: one module per command family (`tasks`: a task over texts or a file; `train`: recipes,
tuning and scoring; `export`; `serve`; `env`), the batch-file runner's JSONL output and its sharding across
processes. `main` parses and dispatches; each family adds its own subcommands and flags."""

from .main import main

__all__ = ["main"]
