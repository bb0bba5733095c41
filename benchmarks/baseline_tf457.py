"""Runs inside the transformers 4.57 virtual environment that `tf457.py` creates: the pipelines users had
before transformers 5 removed them (summarization, translation, question-answering) and 4.57's
text-generation pipeline for chat models.

    python baseline_tf457.py JOB.json RESULT.json

The job is a list of runs, each a pipeline task, a model (a folder, or a folder and a GGUF file), the inputs
and the call's keyword arguments. For each run this writes the outputs and the best time of `repeats` passes
(after a warm-up on two inputs). Kept free of hfapps so that it runs with transformers 4.57 alone.
"""

import json
import sys
import time

import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline


def make_pipeline(task: str, model: str, gguf_file: str | None):
    if gguf_file is None:
        return pipeline(task, model=model, tokenizer=model, device=-1)
    tokenizer = AutoTokenizer.from_pretrained(model, gguf_file=gguf_file)
    tokenizer.padding_side = "left"  # as hfapps does for decoder-only models
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    weights = AutoModelForCausalLM.from_pretrained(model, gguf_file=gguf_file)
    return pipeline(task, model=weights, tokenizer=tokenizer, device=-1)


def plain(task: str, outputs: list) -> list:
    """The part of each output the benchmarks compare."""
    if task == "summarization":
        return [o["summary_text"] for o in outputs]
    if task.startswith("translation"):
        return [o["translation_text"] for o in outputs]
    if task == "question-answering":
        return [{"answer": o["answer"], "start": o["start"], "end": o["end"]} for o in outputs]
    return [o[0]["generated_text"].strip() for o in outputs]  # text-generation


def main() -> None:
    job = json.load(open(sys.argv[1]))
    pipes, results = {}, []
    for run in job["runs"]:
        key = (run["task"], run["model"], run.get("gguf_file"))
        if key not in pipes:
            pipes[key] = make_pipeline(*key)
        pipe, inputs, kwargs = pipes[key], run["inputs"], run["kwargs"]
        pipe(inputs[:2], **kwargs)  # warm-up
        best = float("inf")
        for _ in range(run.get("repeats", 1)):
            start = time.perf_counter()
            outputs = pipe(inputs, **kwargs)
            best = min(best, time.perf_counter() - start)
        results.append({"seconds": best, "outputs": plain(run["task"], outputs)})
    json.dump({"runs": results, "transformers": transformers.__version__}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
