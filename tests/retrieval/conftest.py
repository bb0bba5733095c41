"""The retrieval tests' fixtures: tiny models, documents, and a real `milvus-lite server` (tiny_retrieval.py)."""

import contextlib

import pytest
from retrieval import tiny_retrieval

# pymilvus gives its loggers a handler on the sys.stderr of the moment it is first imported. Imported first inside a
# test that captures output, that handler keeps the capture's stream, closed once the test ends, and every later
# pymilvus message in the process fails on it. Import it now, while sys.stderr is the real one.
with contextlib.suppress(ImportError):
    import pymilvus  # noqa: F401


@pytest.fixture(scope="session")
def retrieval_models(tmp_path_factory):
    return tiny_retrieval.models(tmp_path_factory)


@pytest.fixture
def documents():
    return tiny_retrieval.documents()


@pytest.fixture
def milvus_server(tmp_path):
    server = tiny_retrieval.MilvusServer(str(tmp_path / "server-data"))
    yield server
    server.stop()
