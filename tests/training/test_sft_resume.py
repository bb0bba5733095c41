"""A real `hfapps train sft` process killed with SIGKILL mid-run resumes from its last whole checkpoint, when the
same command runs again, to the same final model as a run never interrupted."""

import json
import os
import subprocess
import sys
import time

from lm_models import tiny_lm  # noqa: F401 (fixture)

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def command(model, data, out):
    return [
        *(sys.executable, "-m", "hfapps", "train", "sft", "--model_name_or_path", model, "--train_file", data),
        *("--output_dir", str(out), "--max_steps", "40", "--save_strategy", "steps", "--save_steps", "5"),
        *("--save_total_limit", "2", "--eval_strategy", "no", "--logging_steps", "5", "--report_to", "none"),
        *("--per_device_train_batch_size", "4", "--seed", "7"),
    ]


def test_sft_killed_with_sigkill_resumes_to_the_same_model(tiny_lm, tmp_path):  # noqa: F811
    chats = [
        [{"role": "user", "content": f"the film {i} was great"}, {"role": "assistant", "content": "positive"}]
        for i in range(24)
    ]
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in chats))
    whole = tmp_path / "whole"
    subprocess.run(command(tiny_lm, str(data), whole), check=True, env=ENV, capture_output=True)

    out = tmp_path / "killed"
    process = subprocess.Popen(
        command(tiny_lm, str(data), out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 300
        while not (out / "checkpoint-5" / "hfapps-complete.json").exists() and process.poll() is None:
            assert time.time() < deadline
            time.sleep(0.02)
        process.kill()  # SIGKILL: no handler runs, the run stops wherever it is
    finally:
        process.wait()
    assert process.returncode == -9, "the run finished before it could be killed"
    assert not (out / "metrics.json").exists()

    resumed = subprocess.run(command(tiny_lm, str(data), out), env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "hfapps: resuming from" in resumed.stderr
    run = json.loads((out / "run.json").read_text())
    assert int(run["resumed_from"].rsplit("-", 1)[1]) >= 5 and run["global_step"] == 40
    killed_metrics = json.loads((out / "metrics.json").read_text())["eval"]
    whole_metrics = json.loads((whole / "metrics.json").read_text())["eval"]
    assert abs(killed_metrics["eval_loss"] - whole_metrics["eval_loss"]) < 1e-5
    assert (out / "adapter_model.safetensors").is_file()
