"""Reading data files: every format alike, and a clear error for a file that holds no rows."""

import json

import pytest

from hfapps.cli import main
from hfapps.data import read_file
from hfapps.errors import DataError


def test_json_without_a_list_of_rows_is_an_error_not_zero_rows(tmp_path, tiny, capsys):
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"texts": ["a", "b"]}))
    assert main(["sentiment", "--input", str(source), "--model", tiny["classifier"]]) == 2
    assert "must hold a JSON list of rows" in capsys.readouterr().err
    with pytest.raises(DataError, match="must hold a JSON list"):
        read_file(str(source))


def test_parquet_and_tsv_files_load_alike(tiny, data, tmp_path):
    from datasets import load_dataset

    from hfapps.tasks.arguments import DataArguments
    from hfapps.training.splits import load_splits

    rows = load_dataset("csv", data_files=data["sentiment"]["train"], split="train")
    rows.to_parquet(str(tmp_path / "train.parquet"))
    with open(tmp_path / "train.tsv", "w", encoding="utf-8") as handle:
        handle.write(
            "text\tlabel\n" + "".join(f'{t} "quoted"\t{label}\n' for t, label in zip(rows["text"], rows["label"]))
        )
    parquet = load_splits(
        DataArguments(
            task="sentiment",
            train_file=str(tmp_path / "train.parquet"),
            validation_file=data["sentiment"]["validation"],
        )
    )
    tsv = load_splits(
        DataArguments(
            task="sentiment", train_file=str(tmp_path / "train.tsv"), validation_file=data["sentiment"]["validation"]
        )
    )
    assert parquet["train"]["text"] == rows["text"]
    assert tsv["train"]["text"] == [f'{t} "quoted"' for t in rows["text"]]  # TSV keeps quotes as text
    assert parquet["train"].features["text"].dtype == "string" == parquet["validation"].features["text"].dtype
