"""`hfapps chat`: an interactive chat in the terminal, the answer streamed as it decodes.

    hfapps chat --max-new-tokens 16 < posts.txt

Each line read is a user turn; the conversation so far goes with it. `/system TEXT` sets the system prompt (and
starts over), `/reset` forgets the conversation, `/exit` (or end of input) quits. Lines come from a terminal, a pipe
or a file alike (above: one user turn per line of posts.txt), so a script can feed it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..api import load
from ..errors import InputError
from ..tasks import call_options, task_class

HELP = "commands: /system TEXT (set the system prompt and start over), /reset (forget the conversation), /exit"


def add(sub: Any) -> None:
    parser = sub.add_parser("chat", help="chat with a model in the terminal (streamed answers)")
    parser.add_argument("--model", help="Hub id, local folder, GGUF file or LoRA folder (default: SmolLM2)")
    parser.add_argument("--system", default=None, help="the system prompt to start with")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best there is)")
    parser.add_argument("--dtype", default=None, help="auto, float32, bfloat16, float16")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a model's own code to run")
    infos = [info for info in task_class("chat").option_infos() if info.name not in ("system", "json_schema")]
    call_options.add_arguments(parser.add_argument_group("decoding options"), infos)
    parser.set_defaults(run=run, chat_options=infos)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    options = call_options.given(args, args.chat_options)
    if "long_input" not in options:
        options["long_input"] = "drop_oldest"  # a long session forgets its start rather than stop answering
    task = load("chat", args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    system = args.system
    history: list[dict[str, str]] = []
    interactive = sys.stdin.isatty()
    print(f"Chatting with {task.ref.name}. {HELP}", file=sys.stderr)
    while True:
        if interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:  # end of input
            break
        text = line.strip()
        if not text:
            continue
        if text == "/exit":
            break
        if text == "/reset":
            history = []
            print("(conversation reset)", file=sys.stderr)
            continue
        if text == "/system" or text.startswith("/system "):
            system = text[len("/system") :].strip() or None
            history = []
            print(f"(system prompt {'set' if system else 'cleared'}; conversation reset)", file=sys.stderr)
            continue
        if text.startswith("/"):
            print(f"Unknown command {text.split()[0]!r}; {HELP}", file=sys.stderr)
            continue
        history.append({"role": "user", "content": text})
        conversation = ([{"role": "system", "content": system}] if system else []) + history
        try:
            stream = task(conversation, stream=True, **options)
        except InputError as err:
            history.pop()
            print(f"hfapps: {err}", file=sys.stderr)
            continue
        pieces = []
        with stream:
            for piece in stream:
                pieces.append(piece)
                print(piece, end="", flush=True)
        print(flush=True)
        history.append({"role": "assistant", "content": "".join(pieces)})
    return 0
