"""What a user installs: a built wheel ships the recipes and sample data."""

import pytest


@pytest.mark.slow
def test_a_built_wheel_ships_the_recipes(tmp_path):
    """`pip install .` (not -e): the wheel holds the recipes, so `hfapps recipes` and a shipped recipe work
    from any folder."""
    import glob
    import os
    import subprocess
    import sys
    import sysconfig

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), root], check=True
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    wheel = glob.glob(str(tmp_path / "dist" / "hfapps-*.whl"))[0]
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], check=True)
    # The dependencies (torch, transformers, the packaged MiniLM) come from this environment, after the wheel.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with open(os.path.join(site, "deps.pth"), "w") as handle:
        handle.write(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    listed = subprocess.run(
        [str(venv / "bin" / "hfapps"), "recipes"], cwd=elsewhere, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "sentiment" in listed and str(venv) in listed  # found inside the installed package
    trained = subprocess.run(
        [str(venv / "bin" / "hfapps"), "train", "sentiment", "--dataset_name", "sample", "--max_steps", "2"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (elsewhere / "runs" / "sentiment" / "model.safetensors").is_file()
