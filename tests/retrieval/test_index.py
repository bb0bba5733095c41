"""hfapps.Index on Milvus Lite (a folder) and on a real `milvus-lite server` (a URL): writes, search modes,
filters, the recorded model, damage and a real `kill -9` of `hfapps index add`."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from hfapps.errors import IndexDamagedError, IndexMismatchError, InputError
from hfapps.retrieval.helpers import embed
from hfapps.retrieval.index import Index
from hfapps.retrieval.milvus import SharedSearch


def _ids(hits):
    return [hit["id"] for hit in hits]


def test_add_search_upsert_delete(tmp_path, retrieval_models, documents):
    model = retrieval_models["embedder"]
    with Index(tmp_path / "ix", model=model) as index:
        assert index.add(documents, batch_size=4) == 6
        assert index.add(documents, batch_size=4) == 0  # the same batches again: committed, skipped
        assert len(index) == 6
        # BM25 finds the only document with these words; dense finds a document's own text first.
        assert _ids(index.search("zebra stripes Africa", k=2, mode="bm25"))[0] == "zebra"
        vector = embed(documents[2]["text"], model=model)
        hits = index.search(vector, k=3)
        assert hits[0]["id"] == "tokyo" and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
        assert index.search(documents[1]["text"], k=1, mode="dense")[0]["id"] == "berlin"
        hybrid = index.search("zebra stripes Africa", k=6)
        assert hybrid[0]["id"] == "zebra" and len(hybrid) == 6
        assert hybrid[0]["metadata"] == {"lang": "en", "year": 2019}
        # Filters: a dict of metadata values, or a Milvus expression.
        assert set(_ids(index.search("capital", k=6, filter={"lang": "de"}))) == {"hund", "katze"}
        assert set(_ids(index.search("capital", k=6, filter='metadata["year"] >= 2022'))) == {"tokyo", "katze"}
        assert set(_ids(index.search("capital", k=6, filter={"year": [2019, 2021]}))) == {"zebra", "berlin"}
        # Upsert: the same id replaces its document (text, vector and metadata), no duplicate.
        index.add([{"id": "paris", "text": "Paris has the Eiffel tower.", "lang": "fr"}])
        assert len(index) == 6
        assert index.get(["paris"])[0] == {
            "id": "paris",
            "text": "Paris has the Eiffel tower.",
            "metadata": {"lang": "fr"},
        }
        assert _ids(index.search("Eiffel tower", k=1, mode="bm25")) == ["paris"]
        assert index.delete(["berlin", "nowhere"]) == 1
        assert index.delete(filter={"lang": "de"}) == 2
        assert sorted(_ids(index.search("city", k=10))) == ["paris", "tokyo", "zebra"]
        batched = index.search(["zebra", "tokyo trains"], k=1, mode="bm25")
        assert [_ids(h) for h in batched] == [["zebra"], ["tokyo"]]
    with Index(tmp_path / "ix") as index:  # reopened: persisted, and it embeds with its own model
        assert len(index) == 3
        assert index.info()["model"] == model and index.info()["dimension"] == 32
        assert index.search(documents[2]["text"], k=1, mode="dense")[0]["id"] == "tokyo"
        assert index.embedder.fingerprint == index.info()["model_fingerprint"]


def test_the_ledger_counts_what_each_upsert_adds(tmp_path, retrieval_models, documents):
    """The ledger adds the ids a batch brings that the index lacked (counting the collection is a pass over it)."""
    with Index(tmp_path / "ix", model=retrieval_models["embedder"]) as index:
        index.add(documents[:4])
        # Two ids it holds, and one new id given twice in the batch: one more document.
        index.add([documents[0], documents[1], {"id": "new", "text": "one"}, {"id": "new", "text": "two"}])
        assert index.ledger.rows == len(index) == 5
        index.add(documents, batch_size=3)  # two batches: the first adds nothing new, the second "zebra", "hund"
        assert index.ledger.rows == len(index) == 7
    assert json.loads((tmp_path / "ix" / "hfapps-documents.json").read_text())["rows"] == 7
    with Index(tmp_path / "ix") as index:
        assert index.get(["new"])[0]["text"] == "two"


def _wait_for(condition, what):
    deadline = time.time() + 60
    while not condition():
        assert time.time() < deadline, f"waited a minute for {what}"
        time.sleep(0.005)


def _gate(shared):
    """Hold the first Milvus call of `shared` until released; record every call's number of queries."""
    run, calls, release = shared._run, [], threading.Event()

    def gated(key, queries):
        calls.append(len(queries))
        if len(calls) == 1:
            release.wait(60)
        return run(key, queries)

    shared._run = gated
    return calls, release


@pytest.mark.parametrize("mode", ["dense", "bm25"])
def test_concurrent_searches_share_one_milvus_call(tmp_path, retrieval_models, documents, mode):
    """Searches that arrive while one runs go to Milvus together, and each caller gets its own hits."""
    model = retrieval_models["embedder"]
    with Index(tmp_path / "ix", model=model) as index:
        index.add(documents)
        if mode == "dense":
            queries = list(embed([d["text"] for d in documents], model=model))
        else:
            queries = ["zebra stripes", "Berlin", "Tokyo trains", "dog", "cat", "Paris"]
        alone = [index.search(q, k=3, mode=mode) for q in queries]
        calls, release = _gate(index._searches)
        with ThreadPoolExecutor(len(queries)) as pool:
            first = pool.submit(index.search, queries[0], k=3, mode=mode)
            _wait_for(lambda: calls == [1], "the first call")
            rest = [pool.submit(index.search, q, k=3, mode=mode) for q in queries[1:]]
            _wait_for(lambda: len(index._searches._waiting.get((mode, 3, ""), [])) == 5, "5 waiting searches")
            release.set()
            together = [first.result()] + [f.result() for f in rest]
        assert calls == [1, 5]
        assert [_ids(hits) for hits in together] == [_ids(hits) for hits in alone]
        for shared, own in zip(together, alone):
            assert [h["score"] for h in shared] == pytest.approx([h["score"] for h in own], abs=1e-5)
            assert [h["text"] for h in shared] == [h["text"] for h in own]
        # Other settings (k here) are another call, and the callers queued behind a finished one are served.
        assert len(index.search(queries[0], k=1, mode=mode)) == 1


def test_a_failed_shared_call_fails_its_callers_only():
    def run(key, queries):
        if "bad" in queries:
            raise InputError("a bad query")
        return [[{"query": q}] for q in queries]

    shared = SharedSearch(run)
    calls, release = _gate(shared)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(shared, "key", ["a"])
        _wait_for(lambda: calls == [1], "the first call")
        bad = [pool.submit(shared, "key", [q]) for q in ("b", "bad")]
        _wait_for(lambda: len(shared._waiting.get("key", [])) == 2, "2 waiting searches")
        other = pool.submit(shared, "other key", ["c", "d"])  # another key is not held behind this one
        assert other.result(timeout=60) == [[{"query": "c"}], [{"query": "d"}]]
        release.set()
        assert first.result() == [[{"query": "a"}]]
        for future in bad:
            with pytest.raises(InputError, match="a bad query"):
                future.result()
    assert shared(("key"), ["e"]) == [[{"query": "e"}]]  # nothing is left holding the key
    assert calls == [1, 2, 2, 1] and not shared._running


def test_another_model_is_refused(tmp_path, retrieval_models, documents):
    with Index(tmp_path / "ix", model=retrieval_models["embedder"]) as index:
        index.add(documents)
    with pytest.raises(IndexMismatchError, match="was built with .*Open it without model="):
        Index(tmp_path / "ix", model=retrieval_models["other_embedder"])
    with Index(tmp_path / "ix") as index:  # the refusal changed nothing
        with pytest.raises(InputError, match="vectors of 32 dimensions"):
            index.search(np.ones(16, dtype=np.float32))
        with pytest.raises(InputError, match="vectors of 32 dimensions"):
            index.add([{"id": "x", "text": "x"}], vectors=np.ones((1, 8), dtype=np.float32))
        index.client.alter_collection_properties("documents", properties={"hfapps.layout": "0"})
    with pytest.raises(InputError, match="layout 0.*Rebuild"):
        Index(tmp_path / "ix")


def test_bad_documents_are_named(tmp_path, retrieval_models):
    with Index(tmp_path / "ix", model=retrieval_models["embedder"]) as index:
        with pytest.raises(InputError, match="Document 1 has no text"):
            index.add([{"id": "a", "text": "fine"}, {"id": "b", "text": " "}])
        with pytest.raises(InputError, match="Split long documents"):
            index.add([{"text": "word " * 20000}])
        with pytest.raises(InputError, match="mode must be one of"):
            index.search("x", mode="fuzzy")
        assert index.search("nothing yet") == [] or len(index) == 0


def test_damage_after_close_is_reported(tmp_path, retrieval_models, documents):
    with Index(tmp_path / "ix", model=retrieval_models["embedder"]) as index:
        index.add(documents)
    segments = glob.glob(str(tmp_path / "ix" / "collections" / "documents" / "partitions" / "*" / "data" / "*.parquet"))
    assert segments
    with open(segments[0], "r+b") as f:  # bytes changed inside a segment: Milvus Lite would read them as numbers
        f.seek(os.path.getsize(segments[0]) // 2)
        f.write(os.urandom(16))
    with pytest.raises(IndexDamagedError, match="damaged after it was closed.*parquet.*rebuild"):
        Index(tmp_path / "ix")


def test_lost_rows_are_reported(tmp_path, retrieval_models, documents):
    with Index(tmp_path / "ix", model=retrieval_models["embedder"]) as index:
        index.add(documents[:3])
        index.add(documents[3:])
    ledger_path = tmp_path / "ix" / "hfapps-documents.json"
    ledger = json.loads(ledger_path.read_text())
    assert ledger["rows"] == 6 and ledger["clean"]
    # Reopened and killed (no clean close): the files are then checked by their row count. A lost manifest falls
    # back to the previous one, silently, in Milvus Lite: fewer rows than were committed.
    ledger.update(clean=False, checksums={})
    ledger_path.write_text(json.dumps(ledger))
    manifest = tmp_path / "ix" / "collections" / "documents" / "manifest.json"
    os.replace(manifest.with_suffix(".json.prev"), manifest)
    with pytest.raises(IndexDamagedError, match="holds [0-5] documents, but 6 were committed"):
        Index(tmp_path / "ix")


def _add_command(folder, docs_file, model, batch_size):
    return [
        sys.executable,
        "-m",
        "hfapps",
        "index",
        "add",
        str(folder),
        "--input",
        str(docs_file),
        "--model",
        model,
        "--batch-size",
        str(batch_size),
    ]


def test_kill_9_during_add_then_rerun_completes(tmp_path, retrieval_models):
    """A real SIGKILL of a real `hfapps index add` process between its committed batches."""
    docs = [{"id": f"doc{i}", "text": f"document number {i} about cats and trains {i % 7}"} for i in range(600)]
    docs_file = tmp_path / "docs.jsonl"
    docs_file.write_text("".join(json.dumps(d) + "\n" for d in docs))
    folder, ledger_path = tmp_path / "ix", tmp_path / "ix" / "hfapps-documents.json"
    command = _add_command(folder, docs_file, retrieval_models["embedder"], 20)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if len(json.loads(ledger_path.read_text())["batches"]) >= 3:
                break
        except (OSError, ValueError):
            pass
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    committed = json.loads(ledger_path.read_text())
    assert 3 <= len(committed["batches"]) < 30, "killed too late to test anything"
    with Index(folder) as index:
        held = {d["id"] for d in index.get([d["id"] for d in docs])}
        assert {f"doc{i}" for i in range(20 * len(committed["batches"]))} <= held  # every committed batch
        assert len(index) == len(held) >= committed["rows"]
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "already committed by an earlier run" in rerun.stderr
    with Index(folder) as index:
        assert len(index) == 600
        assert {d["id"] for d in index.get([d["id"] for d in docs])} == {d["id"] for d in docs}
        assert _ids(index.search("document number 543", k=1, mode="bm25")) == ["doc543"]


def test_a_second_process_is_told_to_use_a_server(tmp_path, retrieval_models, documents):
    with Index(tmp_path / "ix", model=retrieval_models["embedder"]) as index:
        index.add(documents)
        code = f"from hfapps.retrieval.index import Index; Index({str(tmp_path / 'ix')!r})"
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert other.returncode != 0
    assert "another process has it open" in other.stderr and "milvus-lite server" in other.stderr


def test_server_mode_against_a_real_milvus_lite_server(milvus_server, retrieval_models, documents):
    model = retrieval_models["embedder"]
    with Index(milvus_server.url, model=model, collection="docs") as index:
        assert not index.embedded and index.ledger is None
        index.add(documents)
        assert len(index) == 6
        assert _ids(index.search("zebra stripes Africa", k=1, mode="bm25")) == ["zebra"]
        assert index.search(documents[2]["text"], k=1)[0]["id"] == "tokyo"
        assert set(_ids(index.search("x", k=6, filter={"lang": "de"}))) == {"hund", "katze"}
    with Index(milvus_server.url, collection="docs") as index:  # another client: the model is recorded there
        assert index.info()["model"] == model and len(index) == 6
    with pytest.raises(IndexMismatchError):
        Index(milvus_server.url, collection="docs", model=retrieval_models["other_embedder"])
