"""The retrieval tests' fixtures: tiny models, documents, and a real `milvus-lite server` (tiny_retrieval.py)."""

import pytest
from retrieval import tiny_retrieval


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
