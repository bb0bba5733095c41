"""Batch inference over several processes (CPU processes or GPUs, one or more machines).

`hfapps <task> --input big.jsonl --output out.jsonl --num-processes N` re-launches itself with
`accelerate launch`; so does any `accelerate launch -m hfapps <task> ...`. The main process checks the output
as a one-process run would (`--overwrite`, `--resume`); accelerate's `split_between_processes` then gives each
process one contiguous share of the rows still to do, on its own device; each writes its results to a part
file, and once every process has finished (a barrier, not marker files that an older run may have left), the
main process joins the parts into the output in input order.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import HfappsError
from .jsonl import result_record, write_jsonl


def world_size() -> int:
    """How many processes accelerate (or torchrun) launched for this command; 1 when run directly."""
    return int(os.environ.get("WORLD_SIZE", 1))


def free_port() -> int:
    """A TCP port on this machine that nothing listens on now, for the processes to meet at."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def relaunch(argv: list[str], processes: int) -> int:
    """Run this same command again under `accelerate launch` with `processes` processes."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--main_process_port",
        str(free_port()),
        "-m",
        "hfapps",
        *argv,
    ]
    return subprocess.run(command).returncode


def part_path(output: str, rank: int) -> str:
    return f"{output}.part-{rank}"


def remove_parts(output: str) -> None:
    """Remove the part files an interrupted sharded run left for `output` (hfapps' own files, by name)."""
    pattern = re.compile(re.escape(os.path.basename(output)) + r"\.part-\d+$")
    for path in glob.glob(glob.escape(output) + ".part-*"):
        if pattern.match(os.path.basename(path)):
            os.remove(path)


def run(
    output: str,
    rows: list[dict[str, Any]],
    inputs: list[Any],
    plan: Callable[[], tuple[int, bool]],
    predict: Callable[[list[Any], int], Iterable[Any]],
) -> int | None:
    """Run `predict` over the rows still to do, split between the launched processes. The main process
    returns how many rows it wrote; the others return None.

    `plan` runs on the main process only: it checks the output (raising what a one-process run would) and
    returns (rows already done, whether to append). `predict(inputs, rank)` yields one result per input.
    """
    import torch
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    # With no accelerator, only cpu=True makes a multi-process launch one gloo group (else each process is alone).
    state = PartialState(cpu=not torch.cuda.is_available())
    decision: list[Any] = [None]
    if state.is_main_process:
        try:
            decision[0] = plan()
            remove_parts(output)
        except HfappsError as err:
            decision[0] = err
    broadcast_object_list(decision)
    if isinstance(decision[0], HfappsError):
        raise decision[0]
    start, append = decision[0]
    with state.split_between_processes(list(range(start, len(rows)))) as mine:
        results = predict([inputs[i] for i in mine], state.process_index)
        write_jsonl(part_path(output, state.process_index), _with_rows(rows, mine, results))
    state.wait_for_everyone()
    written = None
    if state.is_main_process:
        written = 0
        target = output if append else output + ".joining"
        with open(target, "a" if append else "w", encoding="utf-8") as joined:
            for rank in range(state.num_processes):
                with open(part_path(output, rank), encoding="utf-8") as part:
                    for line in part:
                        joined.write(line)
                        written += 1
        if not append:
            os.replace(target, output)  # an existing output is replaced only by a whole new one
        remove_parts(output)
    state.wait_for_everyone()
    return written


def _with_rows(rows: list[dict[str, Any]], indices: list[int], results: Iterable[Any]):
    for index, result in zip(indices, results, strict=True):
        yield result_record(rows[index], result)
