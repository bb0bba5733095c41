"""Batch inference over several processes (CPU processes or GPUs, one or more machines).

`hfapps <task> --input big.jsonl --output out.jsonl --num-processes N` re-launches itself with
`accelerate launch`; so does any `accelerate launch -m hfapps <task> ...`. Each process takes one contiguous
shard of the input, runs it on its own device and writes its results to a part file; the first process waits
for every part and joins them into the output in input order. No process group is needed: parts are marked
done with a file, so processes never block each other while they work.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from typing import Any

from .errors import HfappsError


def world() -> tuple[int, int, int]:
    """(rank, world size, local rank) of this process under accelerate/torchrun, or (0, 1, 0)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def relaunch(argv: list[str], processes: int) -> int:
    """Run this same command again under `accelerate launch` with `processes` processes."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "-m", "hfapps", *argv]
    return subprocess.run(command).returncode


def shard(items: list[Any], rank: int, size: int) -> tuple[int, int]:
    """The [start, stop) slice of `items` that process `rank` of `size` takes (contiguous, in order)."""
    per = math.ceil(len(items) / size) if items else 0
    return min(rank * per, len(items)), min((rank + 1) * per, len(items))


def part_path(output: str, rank: int) -> str:
    return f"{output}.part-{rank}"


def mark_done(output: str, rank: int) -> None:
    with open(part_path(output, rank) + ".done", "w", encoding="utf-8") as handle:
        handle.write("done\n")


def join_parts(output: str, size: int, timeout: float = 7 * 24 * 3600) -> int:
    """Wait for every process's part, then write them, in order, into `output`; return the row count."""
    deadline = time.time() + timeout
    for rank in range(size):
        while not os.path.exists(part_path(output, rank) + ".done"):
            if time.time() > deadline:
                raise HfappsError(f"Process {rank} never finished its part of {output}.")
            time.sleep(0.2)
    rows = 0
    tmp = output + ".joining"
    with open(tmp, "w", encoding="utf-8") as joined:
        for rank in range(size):
            with open(part_path(output, rank), encoding="utf-8") as part:
                for line in part:
                    joined.write(line)
                    rows += 1
    os.replace(tmp, output)
    for rank in range(size):
        os.remove(part_path(output, rank))
        os.remove(part_path(output, rank) + ".done")
    return rows
