"""What `hfapps serve` is asked for (`ServeConfig`): the models, the address, the key and the limits, checked
before the server starts, and handed as JSON to each worker process."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from ..models import resolve
from ..tasks import task_class

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Paths open without the API key: liveness (for load balancers) and the page itself (it asks for the key).
OPEN_PATHS = ("/health", "/")
CONFIG_ENV = "HFAPPS_SERVE_CONFIG"


@dataclass
class ServeConfig:
    """What `hfapps serve` was asked for; also handed to each worker process as JSON."""

    models: list[tuple[str, str]]  # (task as given, model)
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_wait_ms: float = 5.0
    max_batch_size: int = 64
    max_batch_tokens: int = 32768
    max_body_bytes: int = 1_000_000
    max_texts: int = 256
    max_chars: int = 20_000
    max_new_tokens: int = 512
    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False
    workers: int = 1
    threads: int | None = None  # torch threads per worker (None: torch's default, one per core)
    graceful_timeout: float = 30.0  # on SIGTERM, how long requests in flight may take to finish
    indexes: list[tuple[str, str]] = field(default_factory=list)  # (name, index folder or URL): /v1/indexes/NAME
    # Continuous batching of chat / text-generation models (hfapps/serving/continuous.py) and its KV cache: pages of
    # `cb_page_size` tokens, `cb_num_blocks` of them for all requests together (128 x 64 = 8,192 tokens: 0.4 GB for
    # SmolLM2-135M in float32); `cb_max_batch_tokens` tokens and `cb_max_requests` requests per decoding step.
    continuous_batching: bool = True
    cb_num_blocks: int = 128
    cb_page_size: int = 64
    cb_max_batch_tokens: int = 512
    cb_max_requests: int = 64

    def check(self) -> None:
        if not self.models:
            raise InputError("Give at least one model to serve: --model TASK=MODEL (e.g. sentiment=runs/sentiment).")
        seen: dict[str, str] = {}
        for task, model in self.models:
            name = task_class(task).name
            if name in seen:
                raise InputError(
                    f"Two models for {name}: {seen[name]!r} and {model!r}. Serve one model per task "
                    "(run a second server for the other)."
                )
            seen[name] = model
        for _, model in self.models:  # a missing path or unknown id fails now, not after start-up
            resolve(model, trust_remote_code=self.trust_remote_code)
        if self.host not in LOOPBACK and not self.api_key:
            raise InputError(
                f"Binding to {self.host} makes the API reachable from other machines: pass --api-key "
                "KEY (or set HFAPPS_API_KEY), or bind to 127.0.0.1."
            )
        for name in (
            "max_batch_size",
            "max_body_bytes",
            "max_texts",
            "max_chars",
            "max_new_tokens",
            "workers",
            "threads",
            "cb_num_blocks",
            "cb_page_size",
            "cb_max_batch_tokens",
            "cb_max_requests",
        ):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        if self.max_wait_ms < 0:
            raise InputError(f"--max-wait-ms must be 0 or more, got {self.max_wait_ms}.")
