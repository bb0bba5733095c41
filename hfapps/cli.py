"""The `hfapps` command: run a task over texts or a file, train a recipe, score a model, print the environment.

    hfapps sentiment "I loved it" "I did not"
    hfapps summarize --input docs.jsonl --output summaries.jsonl --max-new-tokens 60
    hfapps translate --source en --target de "Good morning"
    hfapps answer --question "Who?" --context "Ada wrote it."
    hfapps env

Each task's subcommand and its flags come from the task's module (`hfapps.tasks`): its command name, how it
reads its inputs, and its typed call options.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from . import options as task_options
from .errors import HfappsError

if TYPE_CHECKING:
    from .tasks.base import Task


def _task_parser(sub: Any, command: str, cls: type[Task]) -> None:
    parser = sub.add_parser(command, help=f"run {cls.name} over texts or a file")
    cls.add_input_arguments(parser)
    parser.add_argument("--input", help="a .jsonl, .json, .csv, .tsv, .parquet or .txt file (one text per line)")
    parser.add_argument("--output", help="write results here as JSONL (default: print them)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run: keep the rows already in --output, do the rest")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument("--num-processes", type=int, default=1,
                        help="shard the input across N processes (CPU processes or GPUs) with accelerate")
    parser.add_argument("--model", help="Hub id, local folder, GGUF file or `hfapps train` output")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best there is)")
    parser.add_argument("--dtype", default=None, help="auto, float32, bfloat16, float16")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a model's own code to run")
    task_options.add_arguments(parser.add_argument_group(f"{command} options"), cls.option_infos())


def build_parser() -> argparse.ArgumentParser:
    from .tasks import TRAINING, TASKS, commands

    parser = argparse.ArgumentParser(prog="hfapps", description="Hugging Face task helpers and recipes.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, cls in commands().items():
        _task_parser(sub, command, cls)
    sub.add_parser("env", help="print versions, devices, and whether the Hub is reachable")
    train = sub.add_parser("train", help="fine-tune with a YAML recipe: hfapps train RECIPE [--key value ...]",
                           add_help=False)
    train.add_argument("recipe", nargs="?", help="a recipe file, or the name of a shipped one (hfapps recipes)")
    train.add_argument("overrides", nargs=argparse.REMAINDER, help="--key value pairs overriding the recipe")
    tune = sub.add_parser("tune", help="search a recipe's hyperparameters with optuna: hfapps tune RECIPE "
                                       "--n_trials N [--timeout S] [--key value ...]")
    tune.add_argument("recipe", help="a recipe file, or the name of a shipped one (hfapps recipes)")
    tune.add_argument("--n_trials", "--n-trials", type=int, default=10, help="how many trials (default 10)")
    tune.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    tune.add_argument("overrides", nargs=argparse.REMAINDER, help="--key value pairs overriding the recipe")
    sub.add_parser("recipes", help="list the shipped recipes")
    from .server import add_arguments as serve_arguments
    from .export import add_arguments as export_arguments

    serve_arguments(sub.add_parser("serve", help="serve models over HTTP: a REST API and a web page"))
    export_arguments(sub.add_parser("export", help="export a model to ONNX Runtime or CTranslate2 (int8 optional)"))
    evaluate = sub.add_parser("evaluate", help="score a model on a data file with its task helper")
    evaluate.add_argument("task", choices=[name for name in TRAINING if name in TASKS])
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--data", required=True, help="CSV, TSV, JSON(L), Parquet, TXT or SQuAD JSON")
    evaluate.add_argument("--split", default="test", help="the name the scores are filed under")
    evaluate.add_argument("--output", help="write the metrics JSON here (default: print it)")
    evaluate.add_argument("--max-samples", type=int, default=None)
    from .evaluation import COLUMN_SETTINGS

    for column in COLUMN_SETTINGS:
        evaluate.add_argument(f"--{column.replace('_', '-')}", dest=column, default=None)
    return parser


def run_tune(args: argparse.Namespace) -> int:
    from .tune import tune

    overrides, found = list(args.overrides), {"n_trials": args.n_trials, "timeout": args.timeout}
    for key, kind in (("n_trials", int), ("timeout", float)):  # after the recipe, they sit among the overrides
        for flag in (f"--{key}", f"--{key.replace('_', '-')}"):
            if flag in overrides:
                at = overrides.index(flag)
                if at + 1 >= len(overrides):
                    raise HfappsError(f"{flag} needs a value.")
                try:
                    found[key] = kind(overrides[at + 1])
                except ValueError as err:
                    raise HfappsError(f"{flag} takes a number, got {overrides[at + 1]!r}.") from err
                del overrides[at:at + 2]
    summary = tune(args.recipe, overrides, n_trials=found["n_trials"], timeout=found["timeout"])
    print(json.dumps(summary, indent=2, default=str))
    print(f"Best recipe: hfapps train {summary['best_recipe']}", file=sys.stderr)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from .train import train

    metrics = train(args.recipe, args.overrides)
    print(json.dumps({k: v for k, v in metrics.items() if k != "train"}, indent=2, default=str))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import COLUMN_SETTINGS, evaluate_file

    columns = {k: getattr(args, k) for k in COLUMN_SETTINGS if getattr(args, k) is not None}
    scores = evaluate_file(args.task, args.model, args.data, split=args.split, max_samples=args.max_samples,
                           **columns)
    text = json.dumps(scores, indent=2, default=str)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


def _rows(cls: type[Task], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The input rows, from --input or the command line, each holding the columns the task reads."""
    if not args.input:
        return cls.rows_from_arguments(args)
    from .data import DataError, read_file

    columns = cls.input_columns(args)
    data = read_file(args.input, text_column=columns[0], as_strings=True)
    missing = [c for c in columns if c not in data.column_names]
    if missing:
        raise DataError(f"{args.input!r} has no column {missing[0]!r}; its columns are {data.column_names}. "
                        "Name the right one with --text-column (or --question-column/--context-column).")
    return data.to_list()


def _check_output(args: argparse.Namespace) -> None:
    """What a run may do with --output, checked before any model loads."""
    if args.resume and not args.output:
        raise HfappsError("--resume needs --output, the file to continue.")
    if args.resume and args.overwrite:
        raise HfappsError("Pass --resume or --overwrite, not both.")
    if args.output and os.path.exists(args.output) and not (args.resume or args.overwrite):
        raise HfappsError(f"{args.output} already exists. Pass --resume to finish an interrupted run into it, or "
                          "--overwrite to replace it.")


def _resume_point(args: argparse.Namespace, rows: list[dict[str, Any]]) -> tuple[int, bool]:
    """(rows already done, whether to append to --output): with --resume, after checking every done row."""
    from .jsonl import check_resumable, completed_rows

    _check_output(args)
    if not (args.resume and os.path.exists(args.output)):
        return 0, False
    done = completed_rows(args.output)
    check_resumable(args.output, done, rows)
    print(f"Resuming: {len(done)} of {len(rows)} rows already in {args.output}", file=sys.stderr)
    return len(done), True


def run_task(args: argparse.Namespace, argv: list[str]) -> int:
    from . import sharding
    from .api import load
    from .jsonl import result_record, write_jsonl
    from .tasks import commands

    cls = commands()[args.command]
    size = sharding.world_size()
    if args.num_processes > 1 and size == 1:
        if not args.output:
            raise HfappsError("--num-processes needs --output (the processes write parts that are joined there).")
        _check_output(args)
        kept = [a for i, a in enumerate(argv) if not a.startswith("--num-processes")
                and not (i > 0 and argv[i - 1] == "--num-processes")]
        return sharding.relaunch(kept, args.num_processes)
    infos = cls.option_infos()
    call = task_options.given(args, infos)
    task_cls = cls.variant(call)
    load_options: dict[str, Any] = {"device": args.device, "dtype": args.dtype, "batch_size": args.batch_size,
                                    "trust_remote_code": args.trust_remote_code}
    load_options.update({info.name: call.pop(info.name) for info in infos if info.load and info.name in call})
    rows = _rows(cls, args)
    inputs = [cls.input_of(row, args) for row in rows]

    def predict(todo: list[Any], rank: int = 0):
        if size > 1 and not args.device:
            import torch

            if torch.cuda.is_available():
                args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
                load_options["device"] = args.device
            else:  # share the cores instead of each process using all of them
                torch.set_num_threads(max(1, (os.cpu_count() or 1) // size))
        task = load(task_cls.name, args.model,  # type: ignore[arg-type]  # any registered name
                     progress=bool(args.output) and rank == 0, **load_options)
        return task(iter(todo), **call)

    if size > 1:
        if not args.output:
            raise HfappsError("Several processes need --output (their parts are joined there).")
        written = sharding.run(args.output, rows, inputs, lambda: _resume_point(args, rows), predict)
        if written is not None:
            print(f"Wrote {written} results to {args.output} ({size} processes)", file=sys.stderr)
        return 0
    start, append = _resume_point(args, rows)
    records = (result_record(row, result) for row, result in zip(rows[start:], predict(inputs[start:])))
    written = write_jsonl(args.output, records, append=append)
    if args.output:
        print(f"Wrote {written} results to {args.output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"] and (len(argv) == 1 or argv[1] in ("-h", "--help")):
        from .config import help_text

        print(help_text())
        return 0
    args = build_parser().parse_args(argv)
    try:
        if args.command == "env":
            from .env import report

            print(report())
            return 0
        if args.command == "recipes":
            from .config import shipped_recipes

            for name, path in shipped_recipes().items():
                print(f"{name:20s} {path}")
            return 0
        if args.command == "train":
            return run_train(args)
        if args.command == "tune":
            return run_tune(args)
        if args.command == "evaluate":
            return run_evaluate(args)
        if args.command == "export":
            from .export import export

            measured = export(args.model, args.output_dir, format=args.format, quantize=args.quantize, task=args.task,
                            trust_remote_code=args.trust_remote_code, overwrite=args.overwrite, measure=args.measure,
                            calibration_file=args.calibration_file)
            print(f"Exported {args.model} to {args.output_dir}"
                  + (f": {measured['agreement']:.1%} agreement with the source on the {measured['task']} sample, "
                     f"{measured['speedup']}x its speed (model card: {os.path.join(args.output_dir, 'README.md')})"
                     if "agreement" in measured else ""), file=sys.stderr)
            return 0
        if args.command == "serve":
            from .server import config_from_arguments, serve

            serve(config_from_arguments(args))
            return 0
        return run_task(args, argv)
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
