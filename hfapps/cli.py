"""The `hfapps` command: run a task over texts or a file, print the environment, train a recipe.

    hfapps sentiment "I loved it" "I did not"
    hfapps summarize --input docs.jsonl --output summaries.jsonl --model sshleifer/distilbart-cnn-12-6
    hfapps translate --source en --target de "Good morning"
    hfapps answer --question "Who?" --context "Ada wrote it."
    hfapps env
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .errors import HfappsError

TASK_COMMANDS = {
    "sentiment": "sentiment",
    "classify": "classification",
    "summarize": "summarization",
    "translate": "translation",
    "answer": "question-answering",
}


def _task_parser(sub, command: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(command, help=f"run {TASK_COMMANDS[command]} over texts or a file")
    if command != "answer":
        parser.add_argument("texts", nargs="*", help="texts to run on (or use --input)")
    parser.add_argument("--input", help="a .jsonl, .json, .csv, .tsv or .txt file (one text per line)")
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
    if command == "answer":
        parser.add_argument("--question", action="append", help="a question (repeatable)")
        parser.add_argument("--context", help="the text the answers are found in")
        parser.add_argument("--question-column", default="question")
        parser.add_argument("--context-column", default="context")
    else:
        parser.add_argument("--text-column", default="text", help="column holding the text in --input")
    if command in ("sentiment", "classify", "answer"):
        parser.add_argument("--top-k", type=int, default=1)
    if command == "classify":
        parser.add_argument("--labels", help="comma-separated labels for zero-shot classification")
    if command in ("summarize", "translate"):
        parser.add_argument("--max-new-tokens", type=int, default=None)
        parser.add_argument("--num-beams", type=int, default=None)
    if command == "translate":
        parser.add_argument("--source", help="source language code, e.g. en")
        parser.add_argument("--target", help="target language code, e.g. de")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfapps", description="Hugging Face task helpers and recipes.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in TASK_COMMANDS:
        _task_parser(sub, command)
    sub.add_parser("env", help="print versions, devices, and whether the Hub is reachable")
    train = sub.add_parser("train", help="fine-tune with a YAML recipe: hfapps train RECIPE [--key value ...]",
                           add_help=False)
    train.add_argument("recipe", nargs="?", help="a recipe file, or the name of a shipped one (hfapps recipes)")
    train.add_argument("overrides", nargs=argparse.REMAINDER, help="--key value pairs overriding the recipe")
    sub.add_parser("recipes", help="list the shipped recipes")
    evaluate = sub.add_parser("evaluate", help="score a model on a data file with its task helper")
    evaluate.add_argument("task", choices=["sentiment", "classification", "summarization", "translation",
                                           "question-answering"])
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--data", required=True, help="CSV, TSV, JSON(L), Parquet or SQuAD JSON")
    evaluate.add_argument("--split", default="test", help="the name the scores are filed under")
    evaluate.add_argument("--output", help="write the metrics JSON here (default: print it)")
    evaluate.add_argument("--max-samples", type=int, default=None)
    for column in ("text_column", "label_column", "summary_column", "source_lang", "target_lang",
                   "question_column", "context_column", "answers_column"):
        evaluate.add_argument(f"--{column.replace('_', '-')}", dest=column, default=None)
    return parser


def run_train(args: argparse.Namespace) -> int:
    if args.recipe in (None, "-h", "--help"):
        from .config import help_text

        print(help_text())
        return 0
    from .train import train

    metrics = train(args.recipe, args.overrides)
    import json

    print(json.dumps({k: v for k, v in metrics.items() if k != "train"}, indent=2, default=str))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import json

    from .evaluation import evaluate_file

    columns = {k: getattr(args, k) for k in ("text_column", "label_column", "summary_column", "source_lang",
                                              "target_lang", "question_column", "context_column", "answers_column")
               if getattr(args, k) is not None}
    scores = evaluate_file(args.task, args.model, args.data, split=args.split, max_samples=args.max_samples,
                           **columns)
    text = json.dumps(scores, indent=2, default=str)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


def _records(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[Any]]:
    """(rows to echo in the output, inputs for the task)."""
    from .io import read_records

    if args.command == "answer":
        q, c = args.question_column, args.context_column
        if args.input:
            rows = read_records(args.input, (q, c))
        else:
            if not args.question or args.context is None:
                raise HfappsError("answer needs --question and --context, or --input with question/context columns.")
            rows = [{q: question, c: args.context} for question in args.question]
        return rows, [{"question": r[q], "context": r[c]} for r in rows]
    if args.input:
        rows = read_records(args.input, (args.text_column,))
    elif args.texts:
        rows = [{args.text_column: text} for text in args.texts]
    else:
        raise HfappsError(f"Give texts to {args.command}, or --input FILE.")
    return rows, [row[args.text_column] for row in rows]


def _options(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options for loading the task, options for each call)."""
    load = {"device": args.device, "dtype": args.dtype, "batch_size": args.batch_size,
            "trust_remote_code": args.trust_remote_code}
    call: dict[str, Any] = {}
    if getattr(args, "top_k", None) is not None and args.top_k != 1:
        call["top_k"] = args.top_k
    for name in ("max_new_tokens", "num_beams"):
        if getattr(args, name, None) is not None:
            call[name] = getattr(args, name)
    if args.command == "translate":
        load.update(source=args.source, target=args.target)
    return load, call


def _skip_done(args: argparse.Namespace, rows: list[dict[str, Any]], inputs: list[Any]):
    """With --resume, drop the inputs whose results the output file already holds, after checking they match."""
    import os

    from .io import completed_rows

    if not args.output or not os.path.exists(args.output):
        if args.resume and not args.output:
            raise HfappsError("--resume needs --output, the file to continue.")
        return rows, inputs, False
    if not args.resume:
        if args.overwrite:
            return rows, inputs, False
        raise HfappsError(f"{args.output} already exists. Pass --resume to finish an interrupted run into it, or "
                          "--overwrite to replace it.")
    done = completed_rows(args.output)
    if len(done) > len(rows) or any(any(d.get(k) != r[k] for k in r) for d, r in zip(done[-1:], rows[len(done) - 1:])):
        raise HfappsError(f"{args.output} does not hold results for this input (its rows do not match); "
                          "choose another --output.")
    print(f"Resuming: {len(done)} of {len(rows)} rows already in {args.output}", file=sys.stderr)
    return rows[len(done):], inputs[len(done):], True


def run_task(args: argparse.Namespace, argv: list[str]) -> int:
    from .api import load
    from .io import result_record, write_jsonl
    from .sharding import join_parts, mark_done, part_path, relaunch, shard, world

    rank, size, local_rank = world()
    if args.num_processes > 1 and size == 1:
        if not args.output:
            raise HfappsError("--num-processes needs --output (the processes write parts that are joined there).")
        if args.resume:
            raise HfappsError("--resume works with one process; run the rest without --num-processes.")
        if os.path.exists(args.output) and not args.overwrite:
            raise HfappsError(f"{args.output} already exists. Pass --overwrite to replace it.")
        kept = [a for i, a in enumerate(argv) if not a.startswith("--num-processes")
                and not (i > 0 and argv[i - 1] == "--num-processes")]
        return relaunch(kept, args.num_processes)
    rows, inputs = _records(args)
    append = False
    if size > 1:  # one shard of the input per process, each on its own device
        if not args.output:
            raise HfappsError("Several processes need --output (their parts are joined there).")
        import torch

        if torch.cuda.is_available():
            args.device = args.device or f"cuda:{local_rank}"
        else:  # share the cores instead of each process using all of them
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // size))
        start, stop = shard(rows, rank, size)
        rows, inputs = rows[start:stop], inputs[start:stop]
    else:
        rows, inputs, append = _skip_done(args, rows, inputs)
    load_options, call_options = _options(args)
    task_name = TASK_COMMANDS[args.command]
    if args.command == "classify" and args.labels:
        task_name = "zero-shot"
        call_options["labels"] = [label.strip() for label in args.labels.split(",") if label.strip()]
    model = args.model
    if args.command == "translate" and model is None:
        from .tasks.translation import default_model

        model = default_model(args.source, args.target)
    task = load(task_name, model, progress=bool(args.output) and rank == 0, **load_options)
    results = task(iter(inputs), **call_options)
    records = (result_record(r, res) for r, res in zip(rows, results))
    if size > 1:
        write_jsonl(part_path(args.output, rank), records)
        mark_done(args.output, rank)
        if rank == 0:
            written = join_parts(args.output, size)
            print(f"Wrote {written} results to {args.output} ({size} processes)", file=sys.stderr)
        return 0
    written = write_jsonl(args.output, records, append=append)
    if args.output:
        print(f"Wrote {written} results to {args.output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "env":
            from .env import report

            print(report())
            return 0
        if args.command == "recipes":
            from .config import RECIPES_DIR, shipped_recipes

            for name in shipped_recipes():
                print(f"{name:20s} {RECIPES_DIR}/{name}.yaml")
            return 0
        if args.command == "train":
            return run_train(args)
        if args.command == "evaluate":
            return run_evaluate(args)
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
