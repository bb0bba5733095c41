"""`hfapps <task>`: texts from arguments or files, results in order with their input columns, resume, sharding over
processes, and one-line errors."""

import csv
import json
import os

import pytest

from hfapps.cli import main

from tiny_models import sentences


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_sentiment_on_arguments(tiny, capsys):
    code, out, _ = run(capsys, "sentiment", "the film was great", "awful", "--model", tiny["classifier"])
    rows = lines(out)
    assert code == 0 and [r["text"] for r in rows] == ["the film was great", "awful"]
    assert all(r["label"] in ("NEGATIVE", "POSITIVE") for r in rows)


def test_classify_file_to_file_keeps_order_and_columns(tiny, tmp_path, capsys):
    source = tmp_path / "in.csv"
    with open(source, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review"])
        for i in range(25):
            writer.writerow([i, "the film was " + "very " * (i % 7) + "good"])
    target = tmp_path / "out.jsonl"
    code, _, err = run(
        capsys,
        "classify",
        "--input",
        str(source),
        "--text-column",
        "review",
        "--output",
        str(target),
        "--model",
        tiny["classifier"],
        "--batch-size",
        "4",
        "--top-k",
        "2",
    )
    rows = lines(target.read_text())
    assert code == 0 and "Wrote 25 results" in err
    assert [r["id"] for r in rows] == [str(i) for i in range(25)]
    assert all(len(r["result"]) == 2 for r in rows)


def test_zero_shot_from_txt(tiny, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("the match was slow\n\nthe film was great\n")
    code, out, _ = run(capsys, "classify", "--input", str(source), "--labels", "sport, cinema", "--model", tiny["nli"])
    rows = lines(out)
    assert code == 0 and len(rows) == 2 and sorted(rows[0]["labels"]) == ["cinema", "sport"]


def test_summarize_and_translate_jsonl(tiny, tmp_path, capsys):
    source = tmp_path / "docs.jsonl"
    source.write_text("\n".join(json.dumps({"text": t}) for t in ["the film was great.", "this phone is slow."]))
    code, out, _ = run(capsys, "summarize", "--input", str(source), "--model", tiny["t5"], "--max-new-tokens", "4")
    assert code == 0 and all("summary_text" in r for r in lines(out))
    code, out, _ = run(
        capsys,
        "translate",
        "the film",
        "--source",
        "en",
        "--target",
        "de",
        "--model",
        tiny["t5"],
        "--max-new-tokens",
        "4",
    )
    assert code == 0 and "translation_text" in lines(out)[0]


def test_answer_from_arguments_and_file(tiny, tmp_path, capsys):
    code, out, _ = run(
        capsys, "answer", "--question", "who?", "--context", "a zebra was slow today.", "--model", tiny["qa"]
    )
    assert code == 0 and lines(out)[0]["answer"] == "zebra"
    source = tmp_path / "qa.jsonl"
    source.write_text(json.dumps({"q": "who?", "c": "the film and the zebra."}) + "\n")
    code, out, _ = run(
        capsys,
        "answer",
        "--input",
        str(source),
        "--question-column",
        "q",
        "--context-column",
        "c",
        "--model",
        tiny["qa"],
    )
    assert code == 0 and lines(out)[0]["start"] == len("the film and the ")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sentiment"], "Give texts"),
        (["sentiment", "--input", "missing.jsonl"], "does not exist"),
        (["answer", "--question", "who?"], "--context"),
        (["translate", "hello"], "source= and target="),
        (["summarize", "x", "--model", "./no/such/folder"], "does not exist"),
    ],
)
def test_errors_are_one_clear_line_and_exit_2(argv, message, capsys, tiny):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_missing_column_lists_the_columns(tiny, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"review": "good"}) + "\n")
    code, _, err = run(capsys, "sentiment", "--input", str(source), "--model", tiny["classifier"])
    assert code == 2 and "no column 'text'" in err and "['review']" in err


@pytest.mark.slow
def test_batch_inference_sharded_over_two_processes(tiny, tmp_path):
    import subprocess
    import sys

    from tiny_models import sentences

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(sentences(500))))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    base = [sys.executable, "-m", "hfapps", "sentiment", "--input", str(source), "--model", tiny["classifier"]]
    subprocess.run([*base, "--output", str(tmp_path / "one.jsonl")], check=True, env=env, capture_output=True)
    two = subprocess.run(
        [*base, "--output", str(tmp_path / "two.jsonl"), "--num-processes", "2"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert "Wrote 500 results" in two.stderr and "(2 processes)" in two.stderr
    assert lines((tmp_path / "two.jsonl").read_text()) == lines((tmp_path / "one.jsonl").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "one.jsonl", "two.jsonl"]  # parts cleaned up


@pytest.mark.slow
def test_sharded_runs_keep_the_one_process_guarantees(tiny, tmp_path):
    """Under accelerate the output is guarded as in one process; stale parts of an older run are never joined;
    --resume finishes an interrupted output over several processes."""
    import subprocess
    import sys

    from hfapps.cli.sharding import free_port

    from tiny_models import sentences

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(sentences(120))))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    one, out = tmp_path / "one.jsonl", tmp_path / "out.jsonl"
    task = ["sentiment", "--input", str(source), "--model", tiny["classifier"]]
    subprocess.run(
        [sys.executable, "-m", "hfapps", *task, "--output", str(one)], check=True, env=env, capture_output=True
    )
    expected = lines(one.read_text())
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
        "-m",
        "hfapps",
        *task,
        "--output",
        str(out),
    ]
    # An existing output is refused under accelerate launch too, and is left as it was.
    out.write_text("mine\n")
    refused = subprocess.run(launch, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "already exists" in refused.stderr and out.read_text() == "mine\n"
    # A stale part from an older run is not joined.
    out.unlink()
    (tmp_path / "out.jsonl.part-1").write_text(json.dumps({"id": 999, "text": "stale"}) + "\n")
    done = subprocess.run(launch, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert lines(out.read_text()) == expected
    # --resume over two processes finishes a cut-off output.
    out.write_text("".join(json.dumps(r) + "\n" for r in expected[:50]) + '{"id": 50, "te')
    resumed = subprocess.run(
        [sys.executable, "-m", "hfapps", *task, "--output", str(out), "--resume", "--num-processes", "2"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert lines(out.read_text()) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "one.jsonl", "out.jsonl"]


def test_batch_output_keeps_input_columns_and_resume_checks_every_row(tiny, tmp_path, capsys):
    source = tmp_path / "labelled.csv"
    texts = sentences(30, seed=5)
    source.write_text("text,label,score,id\n" + "".join(f"{t},gold{i % 2},0.{i},00{i}\n" for i, t in enumerate(texts)))
    out = tmp_path / "out.jsonl"
    base = ["sentiment", "--input", str(source), "--model", tiny["classifier"], "--output", str(out)]
    assert main(base) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["label"] for r in rows] == [f"gold{i % 2}" for i in range(30)]  # the input's labels, unchanged
    assert [r["id"] for r in rows] == [f"00{i}" for i in range(30)]  # as written in the file: not 0, 1, ...
    assert all(r["pred_label"] in ("NEGATIVE", "POSITIVE") and isinstance(r["pred_score"], float) for r in rows)
    # Cut the file after 10 rows: --resume on labelled input finishes it.
    out.write_text("".join(json.dumps(r) + "\n" for r in rows[:10]))
    assert main([*base, "--resume"]) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
    # A finished row in the middle that does not match its input row is found.
    tampered = rows[:10]
    tampered[4] = {**tampered[4], "text": "another text"}
    out.write_text("".join(json.dumps(r) + "\n" for r in tampered))
    capsys.readouterr()
    assert main([*base, "--resume"]) == 2
    assert "out.jsonl:5 does not match input row 5" in capsys.readouterr().err
