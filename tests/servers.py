"""Real servers for the tests: `hfapps serve` started as its own process on a free loopback port and spoken to
over HTTP only (`Server`, `request`), and the system's Chromium for browser tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from hfapps.cli.sharding import free_port

from conftest import missing


class Server:
    def __init__(self, models: dict[str, str], *extra: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "hfapps", "serve", "--port", str(self.port), *extra]
        for task, model in models.items():
            args += ["--model", f"{task}={model}"]
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.process.stdout.read()}")
            try:
                key = (env or {}).get("HFAPPS_API_KEY")
                if request(self.url, "GET", "/ready", headers={"X-API-Key": key} if key else None)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("the server did not become ready in 120 s")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=60)
        return output


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | str | dict | None = None,
    headers: dict | None = None,
    timeout: float = 60,
) -> tuple[int, object]:
    data = body if isinstance(body, (bytes, type(None))) else (body if isinstance(body, str) else json.dumps(body))
    data = data.encode() if isinstance(data, str) else data
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    missing("a Chromium browser (apt-get install chromium)")
    raise AssertionError  # unreachable
