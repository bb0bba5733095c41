"""hfapps' own record of an embedded index, kept beside Milvus Lite's files: what it must hold, and whether it is whole.

Milvus Lite accepts some damage silently (bytes changed inside a Parquet segment or its write-ahead log are read as
numbers; a lost manifest falls back to an older one with fewer rows), so hfapps keeps `hfapps-ledger.json` in the
index folder (`hfapps-<collection>.json`) and checks it on every open:

- `rows`: the row count after the last committed batch or delete. Fewer rows on open means rows were lost.
- `batches`: a key per committed batch of `Index.add`, so that rerunning an interrupted `hfapps index add` skips
  what was committed (ids are primary keys, so what is redone is upserted, never duplicated). A delete clears them.
- `checksums`: written on a clean close, the SHA-256 of every file of the collection; checked before Milvus Lite
  reads anything, and dropped as soon as the index is open (Milvus Lite rewrites its files while it runs). After a
  `kill -9` there are none, and the row count is what is checked.

The ledger is written atomically (temporary file, fsync, rename), so a kill never leaves half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import IndexDamagedError

#: Files of a Milvus Lite folder that change without the data changing.
UNCHECKED = {"LOCK"}


def path_of(folder: str, collection: str) -> str:
    return os.path.join(folder, f"hfapps-{collection}.json")


def collection_folder(folder: str, collection: str) -> str:
    """Where Milvus Lite 3 keeps one collection's files (schema, manifest, write-ahead log, segments, indexes)."""
    return os.path.join(folder, "collections", collection)


@dataclass
class Ledger:
    collection: str
    rows: int = 0
    batches: list[str] = field(default_factory=list)
    clean: bool = False
    checksums: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: str, collection: str) -> Ledger | None:
        path = path_of(folder, collection)
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                loaded = json.load(f)
            ledger = cls(**loaded)
        except (ValueError, TypeError) as err:
            raise IndexDamagedError(
                f"{path} is damaged ({err}). The index cannot be checked; rebuild it from your documents "
                "(`hfapps index add NEW_FOLDER --input docs.jsonl`)."
            ) from err
        return ledger

    def write(self, folder: str) -> None:
        path = path_of(folder, self.collection)
        temporary = path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def checksums(folder: str, collection: str) -> dict[str, str]:
    """SHA-256 of every file of the collection in `folder` (Milvus Lite's), by path relative to the folder."""
    found: dict[str, str] = {}
    top = collection_folder(folder, collection)
    for root, _, files in os.walk(top):
        for name in files:
            if name in UNCHECKED or name.endswith(".tmp"):
                continue
            path = os.path.join(root, name)
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    digest.update(block)
            found[os.path.relpath(path, folder)] = digest.hexdigest()
    return found


def verify(folder: str, ledger: Ledger) -> None:
    """Raise IndexDamagedError where a cleanly closed index's files differ from what was written at its close."""
    if not (ledger.clean and ledger.checksums):
        return
    now = checksums(folder, ledger.collection)
    changed = sorted(p for p, digest in ledger.checksums.items() if now.get(p) != digest)
    added = sorted(set(now) - set(ledger.checksums))
    if changed or added:
        what = [f"{p} ({'missing' if p not in now else 'changed'})" for p in changed] + [f"{p} (new)" for p in added]
        raise IndexDamagedError(
            f"The index in {folder} was damaged after it was closed: {', '.join(what[:5])}"
            f"{' and more' if len(what) > 5 else ''}. It is not searched. Restore the folder from a backup, or "
            "rebuild it from your documents (`hfapps index add NEW_FOLDER --input docs.jsonl`)."
        )


def batch_key(documents: list[dict[str, Any]]) -> str:
    """The same documents in the same order give the same key (what a rerun of the same command recognises)."""
    digest = hashlib.sha256()
    for document in documents:
        digest.update(json.dumps(document, sort_keys=True, default=str).encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:24]
