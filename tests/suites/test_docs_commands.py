"""Every command line in the README, the docs, a recipe's header and a docstring runs, exactly as written, with the Hub
offline."""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

import tiny_models
from conftest import SHARED_DATA, missing

pytestmark = pytest.mark.slow


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


RECIPES = os.path.join(REPO, "hfapps", "recipes")


SHELL_START = re.compile(
    r"^(hfapps|python|accelerate|make|bash|mkdocs|ruff|mypy|lint-imports|pre-commit|\.venv/bin/)\b"
)

#: The documents whose commands run here: the README, the contributors' guide and every page of the manual.
DOC_FILES = ["README.md", "CONTRIBUTING.md"] + sorted(
    os.path.join("docs", name) for name in os.listdir(os.path.join(REPO, "docs")) if name.endswith(".md")
)


#: Commands that are not run here, and why.
NOT_RUN = {
    "make test": "it runs this test suite (.ci/run runs it)",
    "bash scripts/install.sh .venv": "installation: .ci/run and `make` run it on a fresh clone",
    ".venv/bin/python -m pytest && .venv/bin/python -m pytest -m slow": "it runs this test suite",
    "bash .ci/run": "the CI script itself",
    "accelerate launch --cpu --num_processes 2": "the README names it as what not to do (one process only)",
    "make bench": "the benchmarks take about an hour; each is a script run by hand (benchmarks/RESULTS.md)",
    ".venv/bin/jupyter lab notebooks/": "an interactive server; tests/suites/test_notebooks.py executes every notebook",
    "mkdocs serve": "an interactive server; tests/suites/test_docs_site.py serves the manual and reads it in Chromium",
    "python benchmarks/bench_export.py --task question_answering --qa_train_samples 3000 --qa_questions 1000": (
        "the benchmark behind the README's QA table (it trains a reader for 11 minutes); benchmarks are run by "
        "hand (benchmarks/RESULTS.md)"
    ),
    "python benchmarks/bench_export.py --task int8_variants": "the benchmark behind the int8 variants' table (about "
    "6 minutes on the SST-2 teacher it fine-tunes first); benchmarks are run by hand (benchmarks/RESULTS.md)",
    "python benchmarks/bench_ct2.py --precision": "the benchmark behind the CTranslate2 int8 precision table; "
    "benchmarks are run by hand (benchmarks/RESULTS.md)",
    "python benchmarks/bench_ct2.py": "the benchmark behind the README's CTranslate2 table (it builds the "
    "transformers 4.57 environment and runs for about 10 minutes); benchmarks are run by hand "
    "(benchmarks/RESULTS.md)",
    "hfapps tune benchmarks/tune_sst2.yaml --n_trials 30 --timeout 780 --output_dir runs/sst2-tune": (
        "the 13-minute search behind the README's figures; the README's `hfapps tune sentiment` block and "
        "tests/training/test_tune.py run the same code"
    ),
}


#: Commands that run in the repository itself: the quickstart uses the real packaged models; the checks read the
#: source tree.
IN_REPO = {"make quickstart", ".venv/bin/python scripts/quickstart.py", "python scripts/quickstart.py"}
CHECKS = {"ruff check . && ruff format --check .", "lint-imports", "mypy", "mkdocs build --strict"}


#: A command that trains on a whole dataset of ../shared/data (67,349 SST-2 sentences, 120,000 AG News articles) runs
#: here as written plus FIRST_STEPS: the files, columns and labels are read as the command says and the run trains
#: and evaluates, in seconds instead of minutes. The full runs and their figures: benchmarks/RESULTS.md.
SHARED_TRAINING = re.compile(r"^hfapps train \S+ .*--train_file \.\./shared/data/")
FIRST_STEPS = " --max_steps 20 --max_eval_samples 200"


#: An inline README command that needs the output of others first (run before it in the same folder).
DEPENDS = {
    "hfapps train sentiment --model_name_or_path runs/mlm": ["hfapps train mlm --train_file my_domain.jsonl"],
    "hfapps export runs/sentiment runs/sentiment-int8-mine --quantize int8 --calibration-file my_domain.jsonl": [
        "hfapps train sentiment --dataset_name sample --num_train_epochs 4"
    ],
}


#: accelerate configs that need GPUs (several, or DeepSpeed's CUDA kernels).
GPU_CONFIGS = re.compile(r"--config_file recipes/accelerate/(ddp|fsdp|deepspeed_zero[23]|multi_node)\.yaml")


HUB_MODELS = {
    # six layers, as the real MiniLM-L6 has: the distill recipe cuts 3 of them
    "sentence-transformers/all-MiniLM-L6-v2": lambda path: tiny_models.make_encoder(path, layers=6),
    "distilbert/distilbert-base-uncased-finetuned-sst-2-english": tiny_models.make_classifier,
    "facebook/bart-large-mnli": lambda path: tiny_models.make_classifier(
        path, labels=("contradiction", "neutral", "entailment")
    ),
    "sshleifer/distilbart-cnn-12-6": tiny_models.make_bart,
    "Helsinki-NLP/opus-mt-en-de": tiny_models.make_bart,
    "distilbert/distilbert-base-cased-distilled-squad": tiny_models.make_qa,
    "google-t5/t5-small": tiny_models.make_t5,
    "HuggingFaceTB/SmolLM2-135M-Instruct": tiny_models.make_chat_llama,
}


def _join_continuations(lines: list[str]) -> list[str]:
    joined: list[str] = []
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1].rstrip() + " " + line.strip()
        else:
            joined.append(line.strip())
    # a trailing `# comment` is for the reader; bash would drop it too
    return [re.sub(r"\s+#\s.*$", "", line) for line in joined if line and not line.startswith("#")]


def _read(name: str) -> str:
    return open(os.path.join(REPO, name), encoding="utf-8").read()


def doc_blocks() -> dict[str, list[str]]:
    """Every ```bash block of the documents, by "file:index"; a block that two documents share runs once."""
    found: dict[str, list[str]] = {}
    for name in DOC_FILES:
        for index, block in enumerate(re.findall(r"```bash\n(.*?)```", _read(name), re.S)):
            commands = _join_continuations(block.splitlines())
            if commands and commands not in found.values():
                found[f"{name}:{index}"] = commands
    return found


def readme_blocks() -> list[list[str]]:
    return [commands for key, commands in doc_blocks().items() if key.startswith("README.md:")]


def doc_inline() -> list[str]:
    """Commands written inline (`...`) in the documents' prose, each once."""
    found = []
    for name in DOC_FILES:
        text = re.sub(r"```.*?```", "", _read(name), flags=re.S)
        for span in re.findall(r"`([^`\n]+)`", text):
            # a command, not the name of one (`hfapps train`), a path (`hfapps/data.py`) or a pattern (`<task>`)
            words = span.split()
            is_command = len(words) >= 3 or (
                len(words) == 2 and (words[0] in ("make", "mkdocs") or words[0].endswith("python"))
            )
            if SHELL_START.match(span) and is_command and "<" not in span and span not in found:
                found.append(span)
    return found


def recipe_commands(path: str) -> tuple[list[str], list[str]]:
    """A recipe header's commands (run in order), and its suggested `--key value` fragments (each appended to the
    command that runs the recipe)."""
    header = []
    for line in open(path, encoding="utf-8"):
        if not line.startswith("#"):
            break
        header.append(line[1:].strip())
    commands, fragments = [], []
    for line in _join_continuations(header):
        match = re.search(r"((?:hfapps|accelerate launch) .*?)(?:\s{2,}\(.*)?$", line)
        if match and (line.startswith(("hfapps", "accelerate")) or ": " in line[: match.start() + 2]):
            commands.append(match.group(1).strip())
            continue
        for fragment in re.findall(r"(?:Offline|Your own data): (--[^(]*?)\s*(?:\(|$)", line):
            fragments.append(fragment)
    return commands, fragments


def docstring_commands() -> dict[str, list[str]]:
    """Command lines (indented, starting with `hfapps ` or `accelerate launch `) in hfapps' docstrings."""
    found = {}
    for folder, _, files in os.walk(os.path.join(REPO, "hfapps")):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            tree = ast.parse(open(path, encoding="utf-8").read())
            lines = []
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                    doc = ast.get_docstring(node) or ""
                    lines += [
                        line.strip() for line in doc.splitlines() if re.match(r"^\s+(hfapps|accelerate launch) ", line)
                    ]
            if lines:
                found[os.path.relpath(path, REPO)] = lines
    return found


def _hub_cache(root: str) -> str:
    hub = os.path.join(root, "hub")
    for repo_id, build in HUB_MODELS.items():
        folder = os.path.join(hub, "models--" + repo_id.replace("/", "--"))
        commit = "0" * 40
        build(os.path.join(folder, "snapshots", commit))
        os.makedirs(os.path.join(folder, "refs"))
        with open(os.path.join(folder, "refs", "main"), "w") as handle:
            handle.write(commit)
    return hub


def _write(path: str, rows: list[dict], fmt: str | None = None) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fmt = fmt or os.path.splitext(path)[1]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        if fmt in (".csv", ".tsv"):
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t" if fmt == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
        else:
            handle.writelines(json.dumps(row) + "\n" for row in rows)


def _labelled(n: int, seed: int = 0) -> list[dict]:
    good = {"great", "wonderful", "brilliant", "fast", "not bad", "surprisingly good"}
    return [{"sentence": s, "label": int(any(word in s for word in good))} for s in tiny_models.sentences(n, seed)]


def _squad_rows(n: int) -> list[dict]:
    rows = []
    for i, context in enumerate(" ".join(tiny_models.sentences(3, seed=i)) for i in range(n)):
        answer = context.split()[1]
        rows.append(
            {
                "id": str(i),
                "title": "t",
                "context": context,
                "question": "what is it?",
                "answers": {"text": [answer], "answer_start": [context.index(answer)]},
            }
        )
    return rows


def _hub_datasets(root: str) -> None:
    """Local dataset folders named as the recipes' Hub datasets, with their columns and splits."""
    texts = tiny_models.sentences(96, seed=3)
    _write(f"{root}/stanfordnlp/sst2/train.csv", _labelled(96))
    _write(f"{root}/stanfordnlp/sst2/validation.csv", _labelled(32, seed=1))
    topics = [{"text": t, "label": i % 4} for i, t in enumerate(texts)]
    _write(f"{root}/fancyzhang/ag_news/train.csv", topics[:80])
    _write(f"{root}/fancyzhang/ag_news/test.csv", topics[80:])
    _write(f"{root}/rajpurkar/squad/train.jsonl", _squad_rows(48))
    _write(f"{root}/rajpurkar/squad/validation.jsonl", _squad_rows(16))
    pairs = [{"document": t, "summary": " ".join(t.split()[:3]), "id": str(i)} for i, t in enumerate(texts)]
    for split, part in (("train", pairs[:64]), ("validation", pairs[64:80]), ("test", pairs[80:])):
        _write(f"{root}/EdinburghNLP/xsum/{split}.jsonl", part)
        _write(
            f"{root}/wmt/wmt16/ro-en/{split}.jsonl",
            [{"translation": {"en": row["document"], "ro": row["summary"]}} for row in part],
        )
    with open(f"{root}/wmt/wmt16/README.md", "w", encoding="utf-8") as handle:
        handle.write(
            "---\nconfigs:\n- config_name: ro-en\n  data_files:\n"
            + "".join(
                f"  - split: {split}\n    path: ro-en/{split}.jsonl\n" for split in ("train", "validation", "test")
            )
            + "---\n"
        )
    _write(f"{root}/stanfordnlp/imdb/train.csv", [{"text": t, "label": 0} for t in texts])


def _user_files(root: str) -> None:
    """The files the docs' commands name, as a user would have them."""
    texts = tiny_models.sentences(40, seed=5)
    labelled = _labelled(64, seed=2)
    for name, rows in (
        ("my.csv", labelled[:48]),
        ("dev.csv", labelled[48:]),
        ("my.tsv", labelled[:48]),
        ("dev.tsv", labelled[48:]),
        ("test.jsonl", labelled[48:]),
    ):
        _write(f"{root}/{name}", rows)
    _write(f"{root}/reviews.csv", [{"id": f"{i:03d}", "review": t} for i, t in enumerate(texts)])
    with open(f"{root}/posts.txt", "w", encoding="utf-8") as handle:
        handle.write("\n".join(texts[:8]) + "\n")
    with open(f"{root}/my_domain_text.txt", "w", encoding="utf-8") as handle:
        handle.write("\n".join(tiny_models.sentences(64, seed=6)) + "\n")
    _write(f"{root}/my_domain.jsonl", [{"text": t} for t in tiny_models.sentences(64, seed=6)])
    _write(
        f"{root}/docs.jsonl",
        [
            {"text": " ".join(texts[i : i + 3]), "document": " ".join(texts[i : i + 3]), "summary": texts[i]}
            for i in range(30)
        ],
    )
    _write(f"{root}/test.csv", labelled[48:], ".csv")
    _write(f"{root}/questions.jsonl", [{"question": "who was it?", "context": t} for t in texts[:6]])
    _write(f"{root}/big.jsonl", [{"text": t} for t in tiny_models.sentences(200, seed=8)])
    _write(
        f"{root}/topics.csv",
        [
            {"body": t, "topic": ["sport", "politics", "science"][i % 3]}
            for i, t in enumerate(tiny_models.sentences(60, seed=9))
        ],
    )
    _write(f"{root}/pairs.jsonl", [{"en": t, "ro": " ".join(t.split()[:3])} for t in tiny_models.sentences(40, 10)])
    squad = tiny_models.write_qa_data(os.path.join(root, "squad-files"))
    shutil.copy(squad["train"], f"{root}/train.json")
    shutil.copy(squad["validation"], f"{root}/dev.json")
    with open(f"{root}/my_recipe.yaml", "w", encoding="utf-8") as handle:
        handle.write(
            "task: classification\nmodel_name_or_path: sentence-transformers/all-MiniLM-L6-v2\n"
            "train_file: topics.csv\ntext_column: body\nlabel_column: topic\nnum_train_epochs: 1\n"
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("docs"))
    template = os.path.join(root, "template")
    _hub_datasets(template)
    _user_files(template)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": _hub_cache(root),
        "HF_DATASETS_CACHE": os.path.join(root, "datasets-cache"),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    }
    return {"root": root, "template": template, "env": env, "count": [0]}


def _sandbox(world) -> str:
    """A fresh working folder like the repository root: recipes/, the user's files, and ../shared beside it."""
    world["count"][0] += 1
    base = os.path.join(world["root"], f"run{world['count'][0]}")
    cwd = os.path.join(base, "project")
    shutil.copytree(world["template"], cwd)
    os.symlink(RECIPES, os.path.join(cwd, "recipes"))
    os.makedirs(os.path.join(cwd, "hfapps"))  # the docs name hfapps' sample files by their path in a clone
    os.symlink(os.path.join(REPO, "hfapps", "sample_data"), os.path.join(cwd, "hfapps", "sample_data"))
    if os.path.isdir(SHARED_DATA):
        os.makedirs(os.path.join(base, "shared"))
        os.symlink(os.path.abspath(SHARED_DATA), os.path.join(base, "shared", "data"))
    return cwd


def _run(command: str, cwd: str, env: dict) -> None:
    if command in CHECKS:
        cwd = REPO  # they check the source tree
    elif command.startswith("pre-commit"):
        cwd = _git_repository(cwd)
    if "../shared/data" in command and not os.path.isdir(SHARED_DATA):
        missing("../shared/data")
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (
        f"`{command}` failed with status {done.returncode} in {cwd}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    words = shlex.split(command.split("#")[0])
    for flag, check in (("--output", os.path.isfile), ("--output_dir", os.path.isdir)):
        if flag in words:
            target = os.path.join(cwd, words[words.index(flag) + 1])
            assert check(target), f"`{command}` exited 0 but wrote no {target}"


def _git_repository(cwd: str) -> str:
    """A git repository holding the project's hook configuration, as a clone would: where `pre-commit` runs."""
    subprocess.run(["git", "init", "-q", cwd], check=True)
    shutil.copy(os.path.join(REPO, ".pre-commit-config.yaml"), cwd)
    return cwd


def _run_script(commands: list[str], world) -> None:
    """A block that starts a server in the background (`... &`) runs as one script, as a user's shell session
    would; whatever it leaves running is stopped at the end."""
    script = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "\n".join(commands) + "\nwait\n"
    done = subprocess.run(
        ["bash", "-c", script], cwd=_sandbox(world), env=world["env"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (
        f"the block failed with status {done.returncode}:\n{done.stdout}\n{done.stderr[-5000:]}"
    )
    assert '{"error":{' not in done.stdout, done.stdout  # curl -s prints an error body too


def _serving(command: str) -> list[str]:
    """A bare `hfapps serve ...` runs until stopped: start it, wait until ready, ask it for its models, stop it."""
    port = re.search(r"--port (\d+)", command)
    base = f"localhost:{port.group(1) if port else 8000}"
    return [f"{command} &", f"until curl -sf {base}/ready; do sleep 1; done", f"curl -sf {base}/v1/models", "kill %1"]


def _run_all(commands: list[str], world, cwd: str | None = None, gpu: bool = False) -> None:
    if any(command.startswith("hfapps serve") and not command.endswith("&") for command in commands):
        commands = [
            line
            for command in commands
            for line in (_serving(command) if command.startswith("hfapps serve") else [command])
        ]
    if any(command.endswith("&") for command in commands):
        _run_script(commands, world)
        return
    cwd = cwd or _sandbox(world)
    for command in commands:
        if command in NOT_RUN or (GPU_CONFIGS.search(command) and not gpu):
            continue  # NOT_RUN says why; GPU commands: test_gpu_command
        if command in IN_REPO:
            continue  # test_quickstart_commands
        if SHARED_TRAINING.match(command):
            command += FIRST_STEPS
        _run(command, cwd, world["env"])


def test_the_docs_have_commands():
    """The collectors find what they should (a broken regex would silently test nothing)."""
    blocks, inline = readme_blocks(), doc_inline()
    assert len(blocks) >= 5 and sum(map(len, blocks)) >= 15, blocks
    assert {key.split(":")[0] for key in doc_blocks()} >= {
        "README.md",
        "CONTRIBUTING.md",
        "docs/training.md",
        "docs/export.md",
        "docs/serving.md",
    }
    assert "hfapps train mlm --train_file my_domain.jsonl" in inline, inline
    assert len(os.listdir(RECIPES)) >= 7
    commands, fragments = recipe_commands(os.path.join(RECIPES, "sentiment.yaml"))
    assert commands == ["hfapps train recipes/sentiment.yaml"], commands
    assert fragments == ["--train_file my.tsv --validation_file dev.tsv --text_column sentence"], fragments
    assert "hfapps/training/runner.py" in docstring_commands()
    for dependency in DEPENDS.values():
        assert set(dependency) <= set(inline)


def _params(named: dict[str, list[str]]) -> list:
    """One test per name; under pytest-xdist, the ones that start a server on the documented port 8000 share one
    worker (`--dist loadgroup`), so two of them never run at once."""
    return [
        pytest.param(name, marks=pytest.mark.xdist_group("port-8000")) if _uses_port_8000(commands) else name
        for name, commands in named.items()
    ]


def _uses_port_8000(commands: list[str]) -> bool:
    return any("hfapps serve" in c and "--port" not in c or ":8000" in c or "--port 8000" in c for c in commands)


@pytest.mark.parametrize("block", _params(dict(sorted(doc_blocks().items()))))
def test_doc_block(block, world):
    _run_all(doc_blocks()[block], world)


@pytest.mark.parametrize("command", _params({c: [*DEPENDS.get(c, []), c] for c in doc_inline()}))
def test_doc_inline(command, world):
    if command in NOT_RUN or command in IN_REPO:
        pytest.skip(NOT_RUN.get(command, "run by test_quickstart_commands"))
    _run_all([*DEPENDS.get(command, []), command], world)


def _recipe_files() -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(folder, name), RECIPES)
        for folder, _, names in os.walk(RECIPES)
        for name in names
        if name.endswith(".yaml")
    )


@pytest.mark.parametrize("recipe", _recipe_files())
def test_recipe_header(recipe, world):
    commands, fragments = recipe_commands(os.path.join(RECIPES, recipe))
    assert commands, f"{recipe} does not start with the command that runs it"
    _run_all(commands, world)
    # A fragment goes on the command that runs this recipe, after the commands it needs (distill: the teacher).
    stem = recipe.removesuffix(".yaml")
    target = next((i for i, command in enumerate(commands) if stem in command), 0)
    for fragment in fragments:
        _run_all([*commands[:target], f"{commands[target]} {fragment}"], world)


@pytest.mark.parametrize("module", _params(dict(sorted(docstring_commands().items()))))
def test_docstring_commands(module, world):
    _run_all(docstring_commands()[module], world)


def gpu_commands() -> list[str]:
    everything = [*sum(doc_blocks().values(), []), *doc_inline(), *sum(docstring_commands().values(), [])]
    for recipe in _recipe_files():
        everything += recipe_commands(os.path.join(RECIPES, recipe))[0]
    return sorted({command for command in everything if GPU_CONFIGS.search(command)})


@pytest.mark.parametrize("command", gpu_commands())
def test_gpu_command(command, world):
    """The multi-GPU configs, where there are GPUs (they run on the GPUs they name: ddp.yaml's 8, say)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs GPUs; this machine has none")
    _run_all([command], world, gpu=True)


def test_quickstart_commands():
    """`make quickstart` (the README's first command) and `python scripts/quickstart.py`, in the repository, on
    the real packaged models. make uses this interpreter's environment (VENV), as `make test` does."""
    venv = sys.prefix
    if not os.path.exists(os.path.join(venv, ".installed")):
        missing(f"a `make install` environment (no {venv}/.installed)")
    env = {**os.environ, "VENV": venv, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    inline = [c for c in doc_inline() if c in IN_REPO]
    done = subprocess.run(
        ["bash", "-c", "make quickstart"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"`make quickstart` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "accuracy" in done.stdout, done.stdout[-2000:]
    assert re.search(r"SmolLM2: \S", done.stdout), done.stdout[-2000:]  # the streamed answer is not empty
    # The sample documents are indexed and searched: the monthly pass's own passage is the first hit, and read.
    assert "24 help-centre passages" in done.stdout and "read from pricing-02" in done.stdout, done.stdout[-2000:]
    # The docs' other spellings are the very command make ran (make -n prints it without running it again).
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "quickstart"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    ran = [line for line in dry.stdout.splitlines() if line.endswith("scripts/quickstart.py")][-1].replace(
        venv, ".venv"
    )
    for command in inline:
        if command != "make quickstart":
            assert command in (ran, ran.removeprefix(".venv/bin/")), (command, ran)
