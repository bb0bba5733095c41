"""The recipe keys that say what to train and on which data: `DataArguments`, parsed by `HfArgumentParser` beside
the model keys and the task's `TrainingArguments` (`hfapps.training.recipe`). Each task's training part reads the
keys it needs (its columns, lengths, languages); the help text lives once, in the field metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataArguments:
    task: str = field(
        metadata={
            "help": "What to train: sentiment, classification, summarization, translation, "
            "question-answering, mlm, or another registered task."
        }
    )
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub dataset id (instead of files)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    splits: list[str] = field(
        default_factory=lambda: ["train", "validation", "test"],
        metadata={"help": "Which splits of a Hub dataset to use (e.g. drop an unlabelled test)."},
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "CSV, TSV, JSON, JSONL, Parquet or TXT (one "
            "text per line) file; wins over a recipe's "
            "dataset_name when given on the command line."
        },
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Validation data; default: a seeded split of train."}
    )
    test_file: str | None = field(default=None, metadata={"help": "Test data, scored at the end."})
    column_names: list[str] | None = field(default=None, metadata={"help": "Names for a CSV/TSV without header."})
    validation_split_percentage: float = field(
        default=10.0, metadata={"help": "Share of train held out when there is no validation split."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only the first N train rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only the first N validation rows."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Keep only the first N test rows."})
    text_column: str = field(default="text", metadata={"help": "Column holding the input text."})
    text_pair_column: str | None = field(default=None, metadata={"help": "Second text (sentence-pair tasks)."})
    label_column: str = field(default="label", metadata={"help": "Column holding the label (name or index)."})
    label_list: list[str] | None = field(default=None, metadata={"help": "Label names, in index order."})
    summary_column: str = field(default="summary", metadata={"help": "Column holding the reference summary."})
    source_lang: str | None = field(default=None, metadata={"help": "Source language code, also its column."})
    target_lang: str | None = field(default=None, metadata={"help": "Target language code, also its column."})
    source_prefix: str | None = field(
        default=None, metadata={"help": "Prefix for inputs, e.g. 'summarize: ' for T5 (default: the checkpoint's own)."}
    )
    question_column: str = field(default="question", metadata={"help": "Column holding the question."})
    context_column: str = field(default="context", metadata={"help": "Column holding the context."})
    answers_column: str = field(
        default="answers", metadata={"help": "Column of {'text': [...], 'answer_start': [...]}."}
    )
    max_seq_length: int = field(default=128, metadata={"help": "Longest input in tokens (QA: window length)."})
    max_target_length: int = field(default=64, metadata={"help": "Longest target in tokens (seq2seq)."})
    doc_stride: int = field(default=128, metadata={"help": "QA: token overlap between context windows."})
    hard_negatives: int = field(
        default=0,
        metadata={
            "help": "Embedding: passages of the train file that BM25 ranks high for each query but are not its own, "
            "added to each pair as negatives (0: in-batch negatives only)."
        },
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "MLM: share of tokens masked."})
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after N evaluations without improvement."}
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Start over in an output folder that holds another "
            "hfapps run (command line only; a folder hfapps did "
            "not make is never deleted)."
        },
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for datasets.map."})
