"""Runs inside the transformers 4.57 virtual environment that bench_seq2seq.py creates: the summarization or
translation pipeline users had before transformers 5 removed it. Reads a job (JSON) and writes outputs and
the time taken (JSON). Kept free of hfapps so that it runs with transformers 4.57 alone."""

import json
import sys
import time

import transformers
from transformers import pipeline

job = json.load(open(sys.argv[1]))
pipe = pipeline(job["task"], model=job["model"], tokenizer=job["model"], device=-1)
kwargs = dict(job["generate"], batch_size=job["batch_size"])
if job["truncation"]:
    kwargs["truncation"] = True
pipe(job["inputs"][:2], **kwargs)  # warm-up
start = time.perf_counter()
outputs = pipe(job["inputs"], **kwargs)
seconds = time.perf_counter() - start
key = "summary_text" if job["task"] == "summarization" else "translation_text"
json.dump({"seconds": seconds, "outputs": [o[key] for o in outputs], "transformers": transformers.__version__},
          open(sys.argv[2], "w"))
