# The two commands of the README: `make quickstart` and `make test`. Both install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# The suites run on pytest-xdist workers, each with its share of the cores (tests/conftest.py): on two cores, two
# workers finish sooner than one, since much of a test's time (imports, subprocesses, servers) runs one thread.
WORKERS ?= 2

.PHONY: install quickstart test test-fast test-slow bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $@

quickstart: install
	$(PY) scripts/quickstart.py

test: install
	$(PY) -m pytest -n $(WORKERS) --dist loadgroup
	$(PY) -m pytest -m slow -n $(WORKERS) --dist loadgroup --durations=30

test-fast: install
	$(PY) -m pytest -n $(WORKERS) --dist loadgroup

test-slow: install
	$(PY) -m pytest -m slow -n $(WORKERS) --dist loadgroup --durations=30

# Speed measurements against named baselines (needs ../shared/data); see benchmarks/RESULTS.md.
bench: install
	$(PY) benchmarks/bench_classification.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_train_step.py
	$(PY) benchmarks/bench_seq2seq.py
	$(PY) benchmarks/bench_chat.py
	$(PY) benchmarks/bench_qa.py
	$(PY) benchmarks/bench_serve.py
	$(PY) benchmarks/bench_export.py
	$(PY) benchmarks/bench_ct2.py
	$(PY) benchmarks/bench_peft.py
