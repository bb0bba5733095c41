"""The registry is the only table of tasks: a toy task registered in a test is found by every consumer."""

import contextlib
from dataclasses import dataclass

import pytest

import hfapps
from hfapps.cli import main
from hfapps.tasks import TASKS, TRAINING, register, unregister
from hfapps.tasks.call_options import option
from hfapps.tasks.classification import Classification, ClassificationTraining

from servers import request


@dataclass(frozen=True)
class ShoutOptions:
    exclaim: int = option(1, "how many exclamation marks")


class ShoutTraining(ClassificationTraining):
    sample_file = "sentiment.csv"

    def helper_options(self):
        return {"exclaim": 0}  # score the plain labels


class Shout(Classification):
    """A toy task: the classifier's label, shouted. It declares no export."""

    name = "shout"
    aliases = ("yell",)
    command = "shout"
    options = ShoutOptions
    training = ShoutTraining
    zero_shot = None
    export_format = None

    def _predict(self, batch, options):
        return [
            {"label": out["label"].upper() + "!" * options.exclaim, "score": out["score"]}
            for out in self.pipeline(batch, batch_size=len(batch), truncation=True)
        ]


@pytest.fixture
def shout():
    register(Shout)
    yield Shout
    unregister("shout")


def test_a_registered_task_is_everywhere(shout, tiny, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "shout" in capsys.readouterr().out
    assert hfapps.load("yell", tiny["classifier"])("the film was great", exclaim=3)["label"].endswith("!!!")
    with pytest.raises(hfapps.InputError, match="Unknown option.*it takes: exclaim"):
        hfapps.load("shout", tiny["classifier"])("x", top_k=2)
    assert main(["shout", "the film was great", "--exclaim", "2", "--model", tiny["classifier"]]) == 0
    assert '!!"' in capsys.readouterr().out
    assert "shout" in TRAINING
    metrics = hfapps_train("shout", tiny, tmp_path)
    assert metrics["validation"]["samples"] > 0 and (tmp_path / "run" / "hfapps.json").is_file()
    run = str(tmp_path / "run")
    assert hfapps.load("shout", run)("the film was great")["label"].endswith("!")
    # evaluate: the command's task choices come from the registry
    data = tmp_path / "test.csv"
    data.write_text("text,label\nthe film was great,POSITIVE\nthe film was awful,NEGATIVE\n")
    assert main(["evaluate", "shout", "--model", run, "--data", str(data)]) == 0
    assert '"accuracy"' in capsys.readouterr().out
    # export: refused, naming the tasks that have one, before anything is written
    assert main(["export", run, str(tmp_path / "exported")]) == 2
    assert "shout has no export: `hfapps export` writes models for chat, classification" in capsys.readouterr().err
    assert not (tmp_path / "exported").exists()
    # serve: its endpoint, request schema (its own options) and /v1/models entry
    with serving({"yell": run}) as url:
        status, body = request(url, "POST", "/v1/shout", {"inputs": ["the film was great"], "options": {"exclaim": 2}})
        assert status == 200 and body[0]["label"].endswith("!!")
        assert request(url, "POST", "/v1/yell", {"inputs": "x", "options": {"top_k": 2}})[0] == 422
        assert [m["task"] for m in request(url, "GET", "/v1/models")[1]["data"]] == ["shout"]


@contextlib.contextmanager
def serving(models):
    """The app for `models`, served by uvicorn on a free port in this process (where the toy task is registered)."""
    import threading
    import time

    import uvicorn

    from hfapps.cli.sharding import free_port
    from hfapps.serving.app import ServeConfig, create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(ServeConfig(models=list(models.items()), port=port)),
            port=port,
            log_config=None,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if request(url, "GET", "/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def hfapps_train(task, tiny, tmp_path):
    from hfapps.training.runner import train

    return train(
        {
            "task": task,
            "model_name_or_path": tiny["classifier"],
            "dataset_name": "sample",
            "label_list": ["NEGATIVE", "POSITIVE"],
            "max_steps": 1,
            "output_dir": str(tmp_path / "run"),
        }
    )


def test_unregistered_tasks_are_gone(tiny):
    assert "shout" not in TASKS
    with pytest.raises(hfapps.InputError, match="Unknown task 'shout'"):
        hfapps.load("shout", tiny["classifier"])
