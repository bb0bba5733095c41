"""`hfapps <task> ...`: a task over texts given on the command line or a data file, one subcommand per task.

    hfapps sentiment "I loved it" "I did not"
    hfapps summarize --input docs.jsonl --output summaries.jsonl --max-new-tokens 60

Each subcommand and its flags come from the task's module (`hfapps.tasks`): its command name, how it reads its
inputs, and its typed call options. With --output the results go to a JSONL file that --resume continues after an
interruption and --num-processes splits across processes.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..api import load
from ..data import read_file
from ..errors import DataError, HfappsError
from ..tasks import Task, call_options, commands
from . import sharding
from .jsonl import check_resumable, completed_rows, result_record, write_jsonl


def add(sub: Any) -> None:
    for command, cls in commands().items():
        parser = sub.add_parser(command, help=f"run {cls.name} over texts or a file")
        cls.add_input_arguments(parser)
        parser.add_argument("--input", help="a .jsonl, .json, .csv, .tsv, .parquet or .txt file (one text per line)")
        parser.add_argument("--output", help="write results here as JSONL (default: print them)")
        parser.add_argument(
            "--resume",
            action="store_true",
            help="continue an interrupted run: keep the rows already in --output, do the rest",
        )
        parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
        parser.add_argument(
            "--num-processes",
            type=int,
            default=1,
            help="shard the input across N processes (CPU processes or GPUs) with accelerate",
        )
        parser.add_argument("--model", help="Hub id, local folder, GGUF file or `hfapps train` output")
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best there is)")
        parser.add_argument("--dtype", default=None, help="auto, float32, bfloat16, float16")
        parser.add_argument("--trust-remote-code", action="store_true", help="allow a model's own code to run")
        call_options.add_arguments(parser.add_argument_group(f"{command} options"), cls.option_infos())
        parser.set_defaults(run=run_task)


def _rows(cls: type[Task], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The input rows, from --input or the command line, each holding the columns the task reads."""
    if not args.input:
        return cls.rows_from_arguments(args)
    columns = cls.input_columns(args)
    data = read_file(args.input, text_column=columns[0], as_strings=True)
    missing = [c for c in columns if c not in data.column_names]
    if missing:
        raise DataError(
            f"{args.input!r} has no column {missing[0]!r}; its columns are {data.column_names}. "
            "Name the right one with --text-column (or --question-column/--context-column)."
        )
    return data.to_list()


def _check_output(args: argparse.Namespace) -> None:
    """What a run may do with --output, checked before any model loads."""
    if args.resume and not args.output:
        raise HfappsError("--resume needs --output, the file to continue.")
    if args.resume and args.overwrite:
        raise HfappsError("Pass --resume or --overwrite, not both.")
    if args.output and os.path.exists(args.output) and not (args.resume or args.overwrite):
        raise HfappsError(
            f"{args.output} already exists. Pass --resume to finish an interrupted run into it, or "
            "--overwrite to replace it."
        )


def _resume_point(args: argparse.Namespace, rows: list[dict[str, Any]]) -> tuple[int, bool]:
    """(rows already done, whether to append to --output): with --resume, after checking every done row."""
    _check_output(args)
    if not (args.resume and os.path.exists(args.output)):
        return 0, False
    done = completed_rows(args.output)
    check_resumable(args.output, done, rows)
    print(f"Resuming: {len(done)} of {len(rows)} rows already in {args.output}", file=sys.stderr)
    return len(done), True


def run_task(args: argparse.Namespace, argv: list[str]) -> int:
    cls = commands()[args.command]
    size = sharding.world_size()
    if args.num_processes > 1 and size == 1:
        if not args.output:
            raise HfappsError("--num-processes needs --output (the processes write parts that are joined there).")
        _check_output(args)
        kept = [
            a
            for i, a in enumerate(argv)
            if not a.startswith("--num-processes") and not (i > 0 and argv[i - 1] == "--num-processes")
        ]
        return sharding.relaunch(kept, args.num_processes)
    infos = cls.option_infos()
    call = call_options.given(args, infos)
    task_cls = cls.variant(call)
    load_options: dict[str, Any] = {
        "device": args.device,
        "dtype": args.dtype,
        "batch_size": args.batch_size,
        "trust_remote_code": args.trust_remote_code,
    }
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
        name: Any = task_cls.name  # any registered name, not only the helpers' literal ones
        task = load(
            name,
            args.model,
            progress=bool(args.output) and rank == 0,
            **load_options,
        )
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
