"""Runs inside the transformers 4.57 virtual environment (see bench_qa.py): the question-answering pipeline
users had before transformers 5.3 removed it. Reads a job (JSON), writes answers and the time taken (JSON)."""

import json
import sys
import time

import transformers
from transformers import pipeline

job = json.load(open(sys.argv[1]))
pipe = pipeline("question-answering", model=job["model"], tokenizer=job["model"], device=-1)
items = [{"question": q, "context": c} for q, c in zip(job["questions"], job["contexts"])]
pipe(items[:2], batch_size=job["batch_size"])  # warm-up
start = time.perf_counter()
outputs = pipe(items, batch_size=job["batch_size"])
seconds = time.perf_counter() - start
json.dump({"seconds": seconds, "answers": [o["answer"] for o in outputs],
           "spans": [[o["start"], o["end"]] for o in outputs], "transformers": transformers.__version__},
          open(sys.argv[2], "w"))
