"""Training runs on the tiny models and data, a few steps each: the command-line fragments the tests share, and a
few-step run of each shipped recipe."""

import shlex

from hfapps.training.runner import train


def flags(text: str) -> list[str]:
    """`--key value` pairs written as on a command line ("" is an empty value)."""
    return shlex.split(text)


#: Four steps, evaluated and checkpointed every second one, on the first 48 rows of the local files.
FAST = flags(
    "--max_steps 4 --logging_steps 1 --eval_strategy steps --eval_steps 2 --save_strategy steps "
    "--save_steps 2 --per_device_train_batch_size 8 --per_device_eval_batch_size 8 --dataset_name '' "
    "--max_train_samples 48 --load_best_model_at_end false --early_stopping_patience 0"
)
#: Two steps, a checkpoint after each, no evaluation during training.
STEPS = flags(
    "--max_steps 2 --logging_steps 1 --eval_strategy no --save_strategy steps --save_steps 1 "
    "--per_device_train_batch_size 8 --per_device_eval_batch_size 8 --load_best_model_at_end false "
    "--early_stopping_patience 0"
)
#: Six steps of the sentiment recipe on local files, evaluated and checkpointed every second step.
SIX_STEPS = flags(
    "--dataset_name '' --text_column text --max_steps 6 --logging_steps 1 --eval_strategy steps "
    "--eval_steps 2 --save_strategy steps --save_steps 2 --per_device_train_batch_size 8 "
    "--load_best_model_at_end false --early_stopping_patience 0"
)


def sentiment_args(tiny, data, out) -> list[str]:
    """The sentiment recipe on the tiny classifier and the tiny sentiment files, two steps, into `out`."""
    return (
        flags(
            f"--model_name_or_path {tiny['classifier']} --train_file {data['sentiment']['train']} "
            f"--validation_file {data['sentiment']['validation']} --text_column text --output_dir {out}"
        )
        + STEPS
    )


def recipe_run(name, tiny, data, out, extra=(), callbacks=()):
    """A few-step run of shipped recipe `name` on tiny models and data."""
    args = {
        "sentiment": f"--model_name_or_path {tiny['classifier']} --train_file {data['sentiment']['train']} "
        f"--validation_file {data['sentiment']['validation']} --text_column text",
        "classification": f"--model_name_or_path {tiny['classifier']} --train_file {data['sentiment']['train']} "
        "--label_list NEGATIVE POSITIVE --dropout 0.2",
        "summarization": f"--model_name_or_path {tiny['t5']} --train_file {data['summary']['train']} "
        f"--validation_file {data['summary']['validation']} --max_target_length 8",
        "translation": f"--model_name_or_path {tiny['t5']} --train_file {data['pairs']['train']} "
        f"--validation_file {data['pairs']['validation']} --source_lang en --target_lang de --max_target_length 8",
        "question_answering": f"--model_name_or_path {tiny['qa']} --train_file {data['qa']['train']} "
        f"--validation_file {data['qa']['validation']} --max_seq_length 48 --doc_stride 16",
        "mlm": f"--model_name_or_path {tiny['classifier']} --train_file {data['sentiment']['train']}",
    }[name]
    return train(name, [*FAST, *flags(args), "--output_dir", str(out), *extra], callbacks=callbacks)
