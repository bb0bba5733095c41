import csv
import json

import pytest

from hfapps.cli import main


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
    code, _, err = run(capsys, "classify", "--input", str(source), "--text-column", "review", "--output",
                       str(target), "--model", tiny["classifier"], "--batch-size", "4", "--top-k", "2")
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
    code, out, _ = run(capsys, "translate", "the film", "--source", "en", "--target", "de", "--model", tiny["t5"],
                       "--max-new-tokens", "4")
    assert code == 0 and "translation_text" in lines(out)[0]


def test_answer_from_arguments_and_file(tiny, tmp_path, capsys):
    code, out, _ = run(capsys, "answer", "--question", "who?", "--context", "a zebra was slow today.",
                       "--model", tiny["qa"])
    assert code == 0 and lines(out)[0]["answer"] == "zebra"
    source = tmp_path / "qa.jsonl"
    source.write_text(json.dumps({"q": "who?", "c": "the film and the zebra."}) + "\n")
    code, out, _ = run(capsys, "answer", "--input", str(source), "--question-column", "q", "--context-column", "c",
                       "--model", tiny["qa"])
    assert code == 0 and lines(out)[0]["start"] == len("the film and the ")


@pytest.mark.parametrize("argv, message", [
    (["sentiment"], "Give texts"),
    (["sentiment", "--input", "missing.jsonl"], "does not exist"),
    (["answer", "--question", "who?"], "--context"),
    (["translate", "hello"], "source= and target="),
    (["summarize", "x", "--model", "./no/such/folder"], "does not exist"),
])
def test_errors_are_one_clear_line_and_exit_2(argv, message, capsys, tiny):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_missing_column_lists_the_columns(tiny, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"review": "good"}) + "\n")
    code, _, err = run(capsys, "sentiment", "--input", str(source), "--model", tiny["classifier"])
    assert code == 2 and "no column 'text'" in err and "['review']" in err


def test_env_reports_versions_and_hub(capsys):
    code, out, _ = run(capsys, "env")
    assert code == 0
    assert "transformers: 5." in out and "torch: " in out
    assert "hub: offline (HF_HUB_OFFLINE is set)" in out


@pytest.mark.slow
def test_batch_inference_sharded_over_two_processes(tiny, tmp_path):
    import os
    import subprocess
    import sys

    from tiny_models import sentences

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(sentences(500))))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    base = [sys.executable, "-m", "hfapps", "sentiment", "--input", str(source), "--model", tiny["classifier"]]
    subprocess.run([*base, "--output", str(tmp_path / "one.jsonl")], check=True, env=env, capture_output=True)
    two = subprocess.run([*base, "--output", str(tmp_path / "two.jsonl"), "--num-processes", "2"], env=env,
                         capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "Wrote 500 results" in two.stderr and "(2 processes)" in two.stderr
    assert lines((tmp_path / "two.jsonl").read_text()) == lines((tmp_path / "one.jsonl").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "one.jsonl", "two.jsonl"]  # parts cleaned up
