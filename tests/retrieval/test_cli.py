"""`hfapps embed`, `hfapps index add|search|delete|info` and `hfapps ask` as a user runs them (in-process main)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq

from hfapps.cli.main import main
from hfapps.retrieval.helpers import embed


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_embed_writes_parquet(tmp_path, retrieval_models, documents, capsys):
    docs = _write(tmp_path / "docs.jsonl", documents)
    out = str(tmp_path / "vectors.parquet")
    model = retrieval_models["embedder"]
    assert main(["embed", "--input", docs, "--output", out, "--model", model]) == 0
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == [d["id"] for d in documents]
    vectors = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
    assert np.allclose(vectors, embed([d["text"] for d in documents], model=model), atol=1e-6)
    assert table.schema.metadata[b"hfapps.model"].decode() == model
    assert main(["embed", "--input", docs, "--output", out, "--model", model]) == 2  # no silent overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_index_commands(tmp_path, retrieval_models, documents, capsys):
    docs = _write(tmp_path / "docs.jsonl", documents)
    folder = str(tmp_path / "ix")
    model = retrieval_models["embedder"]
    assert main(["index", "add", folder, "--input", docs, "--model", model]) == 0
    assert "Indexed 6 documents" in capsys.readouterr().err
    assert main(["index", "search", folder, "zebra stripes", "--k", "2", "--mode", "bm25"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in lines][:1] == ["zebra"] and lines[0]["rank"] == 1
    assert main(["index", "delete", folder, "--filter", 'metadata["lang"] == "de"']) == 0
    assert "Deleted 2 documents" in capsys.readouterr().err
    assert main(["index", "info", folder]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["documents"] == 4 and info["model"] == model
    other = retrieval_models["other_embedder"]
    assert main(["index", "add", folder, "--input", docs, "--model", other]) == 2
    assert "was built with" in capsys.readouterr().err
    code = main(["ask", folder, "Where is the zebra?", "--reader", retrieval_models["qa"], "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["id"] == "zebra"
