"""Extractive question answering as a `transformers.ChunkPipeline` (transformers 5.3 removed its own).

A context longer than the model's window is cut into overlapping windows (`doc_stride` tokens of
overlap); every window is scored, and the best spans across all windows are returned with
character offsets into the original context. Registered as `hfapps-question-answering`.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.models.auto.modeling_auto import MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES
from transformers.pipelines.base import ChunkPipeline


class Spans:
    """A window's token spans (character offsets; None outside the context), held in one object so that the
    pipeline's walk that moves tensors to the device does not visit every token's tuple (it recurses
    into lists and tuples: 1.3 million calls for 200 SQuAD questions before, about a tenth of the run)."""

    __slots__ = ("spans",)

    def __init__(self, spans: list) -> None:
        self.spans = spans


class QuestionAnsweringPipeline(ChunkPipeline):
    """Input: `{"question": str, "context": str}`. Output: `{"answer", "score", "start", "end"}`, or a
    list of the `top_k` best when `top_k > 1`. `score` is P(start) * P(end) within the answer's window.
    Spans are widened to whole words unless `align_to_words=False`."""

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.check_model_type(MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES)

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        max_answer_len: int | None = None,
        max_seq_len: int | None = None,
        doc_stride: int | None = None,
        max_question_len: int | None = None,
        align_to_words: bool | None = None,
    ):
        preprocess = {
            k: v
            for k, v in {
                "max_seq_len": max_seq_len,
                "doc_stride": doc_stride,
                "max_question_len": max_question_len,
                "align_to_words": align_to_words,
            }.items()
            if v is not None
        }
        postprocess = {k: v for k, v in {"top_k": top_k, "max_answer_len": max_answer_len}.items() if v is not None}
        return preprocess, {}, postprocess

    def get_inference_context(self):
        return torch.inference_mode

    def preprocess(
        self,
        example: dict[str, str],
        max_seq_len: int | None = None,
        doc_stride: int = 128,
        max_question_len: int = 64,
        align_to_words: bool = True,
    ):
        tokenizer = self.tokenizer
        if max_seq_len is None:
            max_seq_len = min(tokenizer.model_max_length, 384)
        question_first = tokenizer.padding_side == "right"
        question = example["question"]
        # A very long question would leave no room for the context: keep its first tokens only (at most
        # half the window), cutting the text at a token boundary.
        limit = max(1, min(max_question_len, max_seq_len // 2))
        encoded_question = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        question_tokens = len(encoded_question["input_ids"])
        if question_tokens > limit:
            question = question[: encoded_question["offset_mapping"][limit - 1][1]]
            question_tokens = len(tokenizer(question, add_special_tokens=False)["input_ids"])
        room = max_seq_len - question_tokens - tokenizer.num_special_tokens_to_add(pair=True)
        stride = max(0, min(doc_stride, room // 2))
        pair = (question, example["context"]) if question_first else (example["context"], question)
        encoded = tokenizer(
            *pair,
            truncation="only_second" if question_first else "only_first",
            max_length=max_seq_len,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        context_index = 1 if question_first else 0
        windows = len(encoded["input_ids"])
        for w in range(windows):
            sequence_ids = encoded.sequence_ids(w)
            inputs = {name: torch.tensor([encoded[name][w]]) for name in tokenizer.model_input_names if name in encoded}
            offsets = [
                tuple(off) if sid == context_index else None
                for off, sid in zip(encoded["offset_mapping"][w], sequence_ids)
            ]
            if align_to_words:
                offsets = self._word_offsets(encoded, w, offsets, context_index)
            yield {**inputs, "offsets": Spans(offsets), "context": example["context"], "is_last": w == windows - 1}

    @staticmethod
    def _word_offsets(encoded, window: int, offsets: list, context_index: int) -> list:
        """Widen each context token's span to its whole word, so answers never start or end mid-word
        (what the transformers 4 pipeline did with `align_to_words=True`)."""
        words = encoded.word_ids(window)
        if words is None:
            return offsets
        widened = []
        for offset, word in zip(offsets, words):
            if offset is None or word is None:
                widened.append(offset)
                continue
            span = encoded.word_to_chars(window, word, sequence_index=context_index)
            widened.append((span.start, span.end) if span is not None else offset)
        return widened

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        names = set(self.tokenizer.model_input_names)
        outputs = self.model(**{k: v for k, v in model_inputs.items() if k in names})
        passthrough = {k: v for k, v in model_inputs.items() if k not in names}
        return {"start_logits": outputs.start_logits, "end_logits": outputs.end_logits, **passthrough}

    def postprocess(self, windows: list[dict[str, Any]], top_k: int = 1, max_answer_len: int = 15):
        best: dict[tuple[int, int], float] = {}
        left_padded = self.tokenizer.padding_side == "left"
        for window in windows:
            offsets = window["offsets"].spans
            n = len(offsets)
            start_logits = window["start_logits"][0].float()
            end_logits = window["end_logits"][0].float()
            start_logits = start_logits[-n:] if left_padded else start_logits[:n]
            end_logits = end_logits[-n:] if left_padded else end_logits[:n]
            in_context = torch.tensor([off is not None for off in offsets])
            if not in_context.any():
                continue
            start_p = start_logits.masked_fill(~in_context, float("-inf")).softmax(-1)
            end_p = end_logits.masked_fill(~in_context, float("-inf")).softmax(-1)
            # scores[i, j] = P(start=i) * P(end=j) for i <= j < i + max_answer_len
            scores = torch.triu(torch.tril(start_p[:, None] * end_p[None, :], max_answer_len - 1))
            k = min(top_k * 4, int(in_context.sum()) ** 2)
            values, flat = scores.flatten().topk(k)
            for value, index in zip(values.tolist(), flat.tolist()):
                i, j = divmod(index, n)
                if value <= 0 or offsets[i] is None or offsets[j] is None:
                    continue
                span = (offsets[i][0], offsets[j][1])
                best[span] = max(best.get(span, 0.0), value)
        context = windows[0]["context"]
        ranked = sorted(best.items(), key=lambda item: -item[1])[:top_k]
        answers = [{"answer": context[s:e], "score": score, "start": s, "end": e} for (s, e), score in ranked]
        if not answers:
            answers = [{"answer": "", "score": 0.0, "start": 0, "end": 0}]
        return answers[0] if top_k == 1 else answers
