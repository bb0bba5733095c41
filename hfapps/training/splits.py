"""A recipe's data: train / validation / (test) splits from its files or Hub dataset, sampled and split as it says,
before any model is loaded."""

from __future__ import annotations

from collections.abc import Callable

import datasets
from datasets import Dataset, DatasetDict

from ..data import plain_strings, read_file
from ..errors import DataError
from ..tasks.arguments import DataArguments


def load_file(path: str, args: DataArguments) -> Dataset:
    """A recipe's data file."""
    return read_file(path, text_column=args.text_column, column_names=args.column_names)


def load_splits(args: DataArguments, seed: int = 42, sample: Callable[[], Dataset] | None = None) -> DatasetDict:
    """train / validation / (test) from the recipe's files or Hub dataset, sampled and split as it says.

    `dataset_name: sample` is hfapps' own small sample data for the task (hfapps/sample_data/), which `sample`
    reads (the task's `TaskTraining.load_sample`).
    """
    if args.dataset_name == "sample":
        if sample is None:
            raise DataError(
                f"dataset_name: sample needs the task's sample reader: pass sample=TRAINING"
                f"[{args.task!r}](args).load_sample."
            )
        splits = {"train": sample()}
    elif args.dataset_name:
        try:
            raw = datasets.load_dataset(args.dataset_name, args.dataset_config_name)
        except Exception as err:
            raise DataError(
                f"Could not load the dataset {args.dataset_name!r}: {err}. Offline, pass local files "
                "(train_file, validation_file) instead."
            ) from err
        splits = {name: split for name, split in raw.items() if name in args.splits}
    else:
        files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
        if not files["train"]:
            raise DataError("The recipe gives no data: set train_file (and validation_file) or dataset_name.")
        splits = {name: load_file(path, args) for name, path in files.items() if path}
    if "train" not in splits:
        raise DataError(f"The data has no train split; it has {sorted(splits)}.")
    splits = {name: plain_strings(ds) for name, ds in splits.items()}
    if "validation" not in splits:
        if len(splits["train"]) < 2:
            raise DataError("The train split has fewer than 2 rows, so no validation split can be held out.")
        held = splits["train"].train_test_split(test_size=args.validation_split_percentage / 100, seed=seed)
        splits["train"], splits["validation"] = held["train"], held["test"]
    limits = {"train": args.max_train_samples, "validation": args.max_eval_samples, "test": args.max_test_samples}
    for name, limit in limits.items():
        if limit is not None and name in splits:
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    for name, split in splits.items():
        if len(split) == 0:
            raise DataError(f"The {name} split is empty.")
    return DatasetDict(splits)
