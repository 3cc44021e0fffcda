"""The job's working folder ``OUT/.vdp``: the ledger of chunk runs and the chunk result store.

Ledger (``ledger.jsonl``, append-only, one JSON object per line, flushed and fsync'd per line):

``{"event": "run", "run": ID, "resume": bool, "chunks": [...], "spec_sha256": ...}``
    A driver started (or resumed) the job with this chunk plan.
``{"event": "start", "run": ID, "chunk": K, "attempt": A, "actors": {...}}``
    Chunk ``K`` was submitted (attempt ``A`` counts runs across drivers).
``{"event": "retry", "run": ID, "chunk": K, "attempt": A, "reason": ...}``
    That run of the chunk was lost (a model actor died) and is queued again.
``{"event": "done", "run": ID, "chunk": K, "attempt": A, "frames": N, "files": [...], "kept": bool}``
    Every result of the chunk is in the store (``kept``: it stays there until the job ends).
``{"event": "finished", "run": ID}``
    The outputs were published.

A resumed driver reuses every chunk whose last ``done`` is ``kept`` and whose files are all
present with the recorded sizes, and runs only the others: a finished chunk is never run again,
which the ledger itself shows (no chunk has a ``start`` after its kept ``done``).

Store (``chunks/``): one folder per chunk run, ``c00003.a2/``, holding one file per result
batch (``b000123.pt``: indices, pts and layers; no RGB frames — they are decoded again from the
source when the batch is replayed). A finished run's folder is renamed to ``c00003/``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vdp.engine.chunks import Chunk
from vdp.types import FrameBatch

WORKDIR = ".vdp"


def spec_digest(spec_json: str) -> str:
    """Hash of a job spec's JSON (the ledger refuses to resume a different job)."""
    return hashlib.sha256(json.dumps(json.loads(spec_json), sort_keys=True).encode()).hexdigest()


class Ledger:
    """Append-only JSONL record of chunk runs (see the module docstring).

    Args:
        path: The ledger file (created with its folder).
        run_id: Id of this driver's run (default: random).
    """

    def __init__(self, path: Path, run_id: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id or uuid.uuid4().hex[:12]

    def append(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "run": self.run_id, "time": round(time.time(), 3), **fields})
        with open(self.path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def events(self) -> list[dict[str, Any]]:
        """Every complete line of the ledger (a torn last line, from a crash, is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


@dataclass
class StoredBatch:
    """One result batch in the store: its frame range and file (layers, indices, pts)."""

    path: Path
    first: int
    stop: int

    def load(self) -> dict[str, Any]:
        return torch.load(self.path, map_location="cpu", weights_only=True)


@dataclass
class ChunkRecord:
    """What the ledger says about one chunk of the current plan."""

    attempts: int = 0
    kept: list[StoredBatch] = field(default_factory=list)
    done: bool = False


class ChunkStore:
    """Result batches of chunk runs, on disk under ``OUT/.vdp/chunks``.

    Args:
        root: The store folder (created).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def run_dir(self, chunk: int, attempt: int) -> Path:
        return self.root / f"c{chunk:05d}.a{attempt}"

    def final_dir(self, chunk: int) -> Path:
        return self.root / f"c{chunk:05d}"

    def write(self, chunk: int, attempt: int, batch: FrameBatch) -> StoredBatch:
        """Store a batch's layers (not its frames) in the run's folder."""
        folder = self.run_dir(chunk, attempt)
        folder.mkdir(parents=True, exist_ok=True)
        first = int(batch.indices[0])
        path = folder / f"b{first:06d}.pt"
        torch.save({"indices": batch.indices.clone(), "pts_seconds": batch.pts_seconds.clone(),
                    "layers": {k: v.detach().cpu().clone() for k, v in batch.layers.items()}}, path)
        return StoredBatch(path, first, first + len(batch))

    def commit(self, chunk: int, attempt: int, batches: list[StoredBatch]) -> list[StoredBatch]:
        """Rename a finished run's folder to the chunk's final folder; returns the moved files."""
        src, dst = self.run_dir(chunk, attempt), self.final_dir(chunk)
        if dst.exists():
            shutil.rmtree(dst)
        src.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        return [StoredBatch(dst / b.path.name, b.first, b.stop) for b in batches]

    def discard(self, chunk: int, attempt: int | None = None) -> None:
        """Remove one run's folder (or, with no attempt, everything of the chunk)."""
        if attempt is not None:
            shutil.rmtree(self.run_dir(chunk, attempt), ignore_errors=True)
            return
        for p in self.root.glob(f"c{chunk:05d}*"):
            shutil.rmtree(p, ignore_errors=True)

    def remove_unlisted(self, keep: set[int]) -> None:
        """Delete every folder except the final folders of the chunks in `keep`."""
        names = {self.final_dir(k).name for k in keep}
        for p in self.root.iterdir():
            if p.name not in names:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def describe_files(batches: list[StoredBatch]) -> list[dict[str, Any]]:
    """Ledger form of stored batches: name, frame range and size."""
    return [{"name": b.path.name, "first": b.first, "stop": b.stop, "bytes": b.path.stat().st_size}
            for b in batches]


def completed_chunks(events: list[dict[str, Any]], chunks: list[Chunk], store: ChunkStore
                     ) -> dict[int, ChunkRecord]:
    """Per chunk of `chunks`: runs so far and, when reusable, its kept result files.

    A chunk is reusable when its latest ``done`` event is ``kept``, covers its run range, and
    every listed file exists with the recorded size.
    """
    records = {c.index: ChunkRecord() for c in chunks}
    for ev in events:
        k = ev.get("chunk")
        if k not in records:
            continue
        rec = records[k]
        if ev["event"] == "start":
            rec.attempts = max(rec.attempts, int(ev.get("attempt", 0)))
        elif ev["event"] == "done":
            rec.done, rec.kept = False, []
            if ev.get("kept"):
                folder = store.final_dir(k)
                files = [StoredBatch(folder / f["name"], int(f["first"]), int(f["stop"]))
                         for f in ev.get("files", [])]
                if _intact(files, ev.get("files", []), chunks[k]):
                    rec.done, rec.kept = True, files
    return records


def _intact(files: list[StoredBatch], listed: list[dict], chunk: Chunk) -> bool:
    if not files or files[0].first != chunk.run_start or files[-1].stop != chunk.stop:
        return False
    for f, meta in zip(files, listed):
        if not f.path.is_file() or f.path.stat().st_size != int(meta["bytes"]):
            return False
    return all(a.stop == b.first for a, b in zip(files, files[1:]))
