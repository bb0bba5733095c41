"""Long documents: paragraphs and sentences cut into chunks that fit a model's window.

Summaries of long texts are map-reduce (`hfapps.tasks.summarization`): the chunks are summarized, the joined
summaries summarized again until the result fits. Translations are split (`hfapps.tasks.translation`): each
paragraph's sentences are translated in chunks and joined back in order, paragraph breaks kept. Both run the
chunks of every document of a call through the same length-sorted batches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: A line break (with any blank lines and indentation around it) separates paragraphs.
PARAGRAPH_BREAK = re.compile(r"[ \t]*\n\s*")
#: End punctuation, closing quotes or brackets, then space before what looks like a sentence start; or a
#: full-width stop, which needs no space.
SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(\s+)(?=[\"'“‘«(\[¿¡]?[\w])|[。！？]+(\s*)")
#: Words whose trailing full stop does not end a sentence.
ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cf",
        "fig",
        "no",
        "vol",
        "inc",
        "ltd",
        "co",
        "corp",
        "gen",
        "col",
        "lt",
        "sgt",
        "rev",
        "hon",
        "mt",
        "approx",
        "dept",
        "est",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "u.k",
    ]
)


def split_paragraphs(text: str) -> tuple[list[str], list[str]]:
    """(paragraphs, the separators between them, as written), without the text's outer whitespace."""
    text = text.strip()
    paragraphs, separators, start = [], [], 0
    for match in PARAGRAPH_BREAK.finditer(text):
        paragraphs.append(text[start : match.start()])
        separators.append(match.group())
        start = match.end()
    paragraphs.append(text[start:])
    return paragraphs, separators


def split_sentences(paragraph: str) -> list[str]:
    """The sentences of one paragraph, each with its end punctuation; joined with spaces they give it back
    (up to whitespace). Full stops after common abbreviations and single initials do not end a sentence."""
    sentences, start = [], 0
    for match in SENTENCE_END.finditer(paragraph):
        if match.group().startswith(".") and _abbreviation_before(paragraph, match.start()):
            continue
        following = paragraph[match.end() : match.end() + 2].lstrip("\"'“‘«([¿¡")
        if following[:1].islower():  # "... and so on... then" goes on
            continue
        end = match.start(1) if match.group(1) is not None else match.start(2)
        sentence = paragraph[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    rest = paragraph[start:].strip()
    if rest:
        sentences.append(rest)
    return sentences


def _abbreviation_before(text: str, dot: int) -> bool:
    word = re.search(r"([\w.]+)$", text[max(0, dot - 32) : dot])  # a bounded look back: linear in the text
    if not word:
        return False
    token = word.group(1).lower().rstrip(".")
    return token in ABBREVIATIONS or (len(token) == 1 and text[dot - 1].isupper())


@dataclass
class Chunker:
    """Cuts text into chunks of at most `budget` tokens of `tokenizer` (no special tokens counted).

    Chunks end at sentence ends; a sentence longer than the budget is cut at token boundaries. `overlap`:
    a chunk starts with the previous one's last whole sentences up to this many tokens (context for a summary).
    """

    tokenizer: Any
    budget: int
    overlap: int = 0

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]

    def paragraph_chunks(self, text: str) -> tuple[list[list[str]], list[str]]:
        """Each paragraph's chunks (never spanning two paragraphs), and the separators between paragraphs."""
        paragraphs, separators = split_paragraphs(text)
        return [self._pack([(" ", s) for s in split_sentences(p)]) for p in paragraphs], separators

    def document_chunks(self, text: str) -> list[str]:
        """Chunks of the whole text: a chunk may span paragraphs (their breaks kept) and starts with up to
        `overlap` tokens of the previous chunk's last sentences."""
        paragraphs, separators = split_paragraphs(text)
        units = [
            (separator if i == 0 else " ", sentence)
            for p, separator in zip(paragraphs, ["\n", *separators], strict=True)
            for i, sentence in enumerate(split_sentences(p))
        ]
        return self._pack(units)

    def _pack(self, units: list[tuple[str, str]]) -> list[str]:
        """Greedy: sentences (each with the separator before it) join the current chunk while it stays within
        the budget."""
        pieces: list[tuple[str, str]] = []
        for (separator, sentence), n in zip(units, self.count([u[1] for u in units]), strict=True):
            if n <= self.budget:
                pieces.append((separator, sentence))
            else:
                pieces += [(separator if i == 0 else " ", part) for i, part in enumerate(self._cut(sentence))]
        lengths = self.count([p[1] for p in pieces])
        chunks: list[list[int]] = []
        current: list[int] = []
        for index, n in enumerate(lengths):
            if current and sum(lengths[i] + 1 for i in current) + n > self.budget:
                chunks.append(current)
                current = self._carried(current, lengths, room=self.budget - n)
            current.append(index)
        if current:
            chunks.append(current)
        return [self._join([pieces[i] for i in chunk]) for chunk in chunks]

    def _carried(self, chunk: list[int], lengths: list[int], room: int) -> list[int]:
        """The chunk's last whole sentences, at most `overlap` tokens (and leaving `room` for the next one)."""
        carried: list[int] = []
        total = 0
        for index in reversed(chunk[1:]):  # never the whole chunk: each chunk brings something new
            total += lengths[index] + 1
            if total > min(self.overlap, room - 1):
                break
            carried.insert(0, index)
        return carried

    def _cut(self, sentence: str) -> list[str]:
        ids = self.tokenizer(sentence, add_special_tokens=False, verbose=False)["input_ids"]
        step = max(1, self.budget - 2)  # decoding and re-encoding a window can add a token at its edges
        return [
            self.tokenizer.decode(ids[start : start + step], skip_special_tokens=True).strip()
            for start in range(0, len(ids), step)
        ]

    @staticmethod
    def _join(pieces: list[tuple[str, str]]) -> str:
        return pieces[0][1] + "".join(separator + sentence for separator, sentence in pieces[1:])
