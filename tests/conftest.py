import os

# Tests never reach the Hub: a miss must fail at once, not retry.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `make test` runs the slow suite on two pytest-xdist workers: each takes its share of the cores for its threads,
# and the processes it starts inherit it. Two workers of two OpenMP threads each on two cores spin-wait on each
# other and finish later than one worker would.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import pytest  # noqa: E402

import tiny_models  # noqa: E402

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Paths of tiny model folders, built once per test session."""
    root = tmp_path_factory.mktemp("models")
    return {
        "classifier": tiny_models.make_classifier(str(root / "classifier")),
        "nli": tiny_models.make_classifier(str(root / "nli"), labels=("entailment", "neutral", "contradiction")),
        "qa": tiny_models.make_qa(str(root / "qa")),
        "t5": tiny_models.make_t5(str(root / "t5")),
        "bart": tiny_models.make_bart(str(root / "bart")),
        "chat": tiny_models.make_chat_llama(str(root / "chat")),
    }


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """Tiny training data files: sentiment (CSV + JSONL), SQuAD-format QA, and two kinds of text pairs."""
    from tiny_models import write_pairs_data, write_qa_data, write_sentiment_data

    root = tmp_path_factory.mktemp("data")
    return {
        "sentiment": write_sentiment_data(str(root / "sentiment")),
        "qa": write_qa_data(str(root / "qa")),
        "summary": write_pairs_data(str(root / "summary"), "document", "summary"),
        "pairs": write_pairs_data(str(root / "pairs"), "en", "de"),
    }


@pytest.fixture(autouse=True)
def _fresh_helper_cache():
    import hfapps

    yield
    hfapps.clear_cache()


def missing(what: str) -> None:
    """A resource a test needs is not here: skip on a laptop, but fail where everything must be present
    (HFAPPS_REQUIRE_ALL=1, set by .ci/run), so that a lost install step cannot hide behind a skip."""
    if os.environ.get("HFAPPS_REQUIRE_ALL") == "1":
        pytest.fail(f"{what} is missing, and HFAPPS_REQUIRE_ALL=1 requires it", pytrace=False)
    pytest.skip(f"{what} is missing")


def need_module(name: str):
    """Import `name`, or report it missing as above."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python module {name}")


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        missing("../shared/data")
    return os.path.abspath(SHARED_DATA)
