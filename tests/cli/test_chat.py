"""`hfapps chat` as a real subprocess fed through stdin: answers streamed to stdout, the history kept between turns,
`/reset`, `/system` and `/exit`."""

import os
import subprocess
import sys

from lm_models import tiny_lm  # noqa: F401 (fixture)


def chat(model, lines, *flags):
    done = subprocess.run(
        [sys.executable, "-m", "hfapps", "chat", "--model", model, "--max-new-tokens", "8", *flags],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines(), done.stderr


def test_history_reset_system_and_exit(tiny_lm):  # noqa: F811
    import hfapps

    helper = hfapps.load("chat", model=tiny_lm)
    first = helper([{"role": "user", "content": "hello there"}], max_new_tokens=8)["content"]
    second = helper(
        [
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": first},
            {"role": "user", "content": "the film"},
        ],
        max_new_tokens=8,
    )["content"]
    brief = helper(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}], max_new_tokens=8
    )["content"]
    lines, err = chat(
        tiny_lm,
        ["hello there", "the film", "/reset", "hello there", "/system be brief", "hello there", "/exit", "late"],
    )
    # the second answer saw the first turn (history), the third did not (/reset), the fourth had the system prompt
    assert lines == [first, second, first, brief]
    assert "conversation reset" in err and "system prompt set" in err


def test_unknown_commands_and_bad_turns_are_reported_and_the_session_goes_on(tiny_lm):  # noqa: F811
    lines, err = chat(tiny_lm, ["/nope", "the film was " * 150, "hi"], "--long-input", "refuse")
    assert "Unknown command '/nope'" in err and "window of 256 tokens" in err
    assert len(lines) == 1  # "hi" was answered; end of input ended the session
