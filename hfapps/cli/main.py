"""`hfapps COMMAND ...`: parse the command line, run the command, turn hfapps' errors into a message and exit code 2.

    hfapps sentiment "I loved it" "I did not"
    hfapps summarize --input docs.jsonl --output summaries.jsonl --max-new-tokens 60
    hfapps translate --source en --target de "Good morning"
    hfapps answer --question "Who?" --context "Ada wrote it."
    hfapps env

Each family module adds its subcommands (`add(subparsers)`) with the function that runs them as `run`.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import HfappsError
from . import ask, chat, env, export, index, serve, tasks, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfapps", description="Hugging Face task helpers and recipes.")
    sub = parser.add_subparsers(dest="command", required=True)
    for family in (tasks, chat, index, ask, env, train, serve, export):
        family.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"] and (len(argv) == 1 or argv[1] in ("-h", "--help")):
        return train.print_recipe_help()
    args = build_parser().parse_args(argv)
    try:
        return args.run(args, argv)
    except HfappsError as err:
        print(f"hfapps: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        output = getattr(args, "output", None)
        hint = f" The rows written so far are in {output}; add --resume to finish." if output else ""
        print(f"hfapps: interrupted.{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
