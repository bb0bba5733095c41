"""The registry is the only table of tasks: a toy task registered in a test is found by every consumer."""

from dataclasses import dataclass

import pytest

import hfapps
from hfapps.cli import main
from hfapps.tasks import TASKS, TRAINING, register, unregister
from hfapps.tasks.call_options import option
from hfapps.tasks.classification import Classification, ClassificationTraining


@dataclass(frozen=True)
class ShoutOptions:
    exclaim: int = option(1, "how many exclamation marks")


class ShoutTraining(ClassificationTraining):
    sample_file = "sentiment.csv"

    def helper_options(self):
        return {"exclaim": 0}  # score the plain labels


class Shout(Classification):
    """A toy task: the classifier's label, shouted."""

    name = "shout"
    aliases = ("yell",)
    command = "shout"
    options = ShoutOptions
    training = ShoutTraining
    zero_shot = None

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
    assert hfapps.load("shout", str(tmp_path / "run"))("the film was great")["label"].endswith("!")


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
