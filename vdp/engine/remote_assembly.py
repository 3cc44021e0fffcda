"""The driver's side of writing on the workers: it coordinates, it never holds frames.

`RemoteAssembler` stands where `vdp.engine.assembly.Assembler` stands in the scheduler, but
each chunk run's results go from its last stage's actor straight to a `WriterActor` on the same
node (`RemoteResults.route`); the driver receives small facts per batch and, for the seams,
passes object refs between writers:

1. chunk ``k``'s writer hands out its head (overlap layers) as a ref;
2. once chunk ``k-1``'s map is known, its writer joins that head (fit, cross-fade, tail
   written) and returns chunk ``k``'s map;
3. chunk ``k``'s writer gets its map and chunk 0's ranges and writes what it held;
4. when every chunk is finished, `publish` joins each output's parts (`vdp.outputs.parts`).

Chunks finish in any order; the seams resolve in frame order as their inputs arrive, never
blocking the scheduler's loop (calls whose answers are awaited are polled with ``ray.wait``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from vdp.engine.chunk_writer import WriteRequest, WriteStats
from vdp.engine.chunks import Chunk
from vdp.engine.ledger import ChunkStore, Ledger, StoredBatch, describe_files
from vdp.engine.merge import Fit, Policy, SeamRecord
from vdp.engine.writer_actor import writer_on


@dataclass
class RemoteResults:
    """One chunk run whose results are written on its node (what `Assembler.begin` returns)."""

    chunk: Chunk
    attempt: int
    key: str
    writer: Any
    timeout_s: float
    finished: bool = False
    complete: bool = False
    seq: int = 0
    head: Any = None  # ref of the head's layers, once the writer has it
    stored: list[dict[str, Any]] = field(default_factory=list)

    def route(self, ref: Any) -> Any:
        """Send a result ref to the chunk's writer; returns the ref of the writer's answer."""
        out = self.writer.add.remote(self.key, self.seq, ref, self.timeout_s)
        self.seq += 1
        return out


class RemoteAssembler:
    """Coordinates the chunk writers of one job (see the module docstring).

    Args:
        chunks: The plan.
        spec_json: The job spec.
        info: The source's metadata.
        policies: Merge policy per layer.
        parts_root: Folder for the parts (under the job's work folder: shared storage).
        store: Where a chunk's raw results are kept for a resumed driver (None: not kept).
        ledger: Receives ``done`` events.
        job_tag: Starts the keys of the job's chunk runs on the writers (the Ray job id first).
        timeout_s: Deadline of each writer call.
        idle: Writers work at idle priority (CPU-only nodes).
        on_written: Called with (frames, seconds) as the writers report frames written.
    """

    def __init__(self, chunks: list[Chunk], spec_json: str, info: Any, policies: dict[str, Policy],
                 parts_root: Path, store: ChunkStore | None, ledger: Ledger, job_tag: str,
                 timeout_s: float, idle: bool = False, on_written: Any = None,
                 idle_s: float | None = None) -> None:
        self.chunks = chunks
        self.spec_json, self.info, self.policies = spec_json, info, policies
        self.parts_root, self.store, self.ledger = parts_root, store, ledger
        self.job_tag, self.timeout_s, self.idle = job_tag, timeout_s, idle
        self.on_written = on_written
        self.idle_s = idle_s
        self._cpu0: dict[str, float] = {}
        self.writers: dict[str, Any] = {}  # node id -> WriterActor
        self.current: dict[int, RemoteResults] = {}
        self.maps: dict[int, dict[str, Fit]] = {0: {}}
        self.ranges: list[dict] | None = None
        self.seams: list[SeamRecord] = []
        self.warnings: list[str] = []
        self.stats: dict[int, WriteStats] = {}
        self._mapped: set[int] = {0}  # chunk runs whose writer has its map
        self._joins: dict[Any, tuple[int, str]] = {}  # pending join -> (chunk k joining k+1, its run's key)
        self._joining: set[int] = set()
        self._map_calls: list[Any] = []  # set_map calls (their errors surface at `finish`)
        self.writer_info: list[dict[str, Any]] = []
        self._writer(None)  # starting up beside the models' loading, not after it

    # -- the Assembler interface -----------------------------------------------------------------

    def begin(self, chunk: Chunk, attempt: int, node_id: str | None = None) -> RemoteResults:
        """A new run of `chunk` whose last stage runs on `node_id`."""
        old = self.current.get(chunk.index)
        if old is not None:
            self.abandon(old)
        writer = self._used(node_id)
        key = f"{self.job_tag}:c{chunk.index}:a{attempt}"
        nxt = self.chunks[chunk.index + 1].overlap if chunk.index + 1 < len(self.chunks) else 0
        request = WriteRequest(self.spec_json, self.info, chunk, nxt, self.policies,
                               str(self.parts_root / f"c{chunk.index:05d}.a{attempt}"),
                               None if self.store is None else str(self.store.root), attempt)
        ray.get(writer.begin.remote(key, request, self.idle), timeout=self.timeout_s)
        res = RemoteResults(chunk, attempt, key, writer, self.timeout_s)
        self.current[chunk.index] = res
        if chunk.index:
            self._mapped.discard(chunk.index)
        self.pump()
        return res

    def add(self, res: RemoteResults, facts: dict[str, Any]) -> None:
        """What the writer said about one batch it took."""
        if self.current.get(res.chunk.index) is not res:
            return
        if facts.get("head") is not None:
            res.head = facts["head"]
        if facts.get("ranges") is not None and self.ranges is None:
            self.ranges = facts["ranges"]
        res.complete = bool(facts.get("complete"))
        res.stored.extend(facts.get("stored", []))
        self._count(facts)
        self.pump()

    def complete(self, res: RemoteResults) -> None:
        """The run delivered every result."""
        if self.current.get(res.chunk.index) is not res:
            return
        res.finished = True
        if self.store is not None:
            kept = [StoredBatch(Path(f["path"]), int(f["first"]), int(f["stop"])) for f in res.stored]
            kept = self.store.commit(res.chunk.index, res.attempt, kept)
            self.ledger.append("done", chunk=res.chunk.index, attempt=res.attempt,
                               frames=res.chunk.run_frames, kept=True, files=describe_files(kept))
        else:
            self.ledger.append("done", chunk=res.chunk.index, attempt=res.attempt,
                               frames=res.chunk.run_frames, kept=False, files=[])
        self.pump()

    def abandon(self, res: RemoteResults) -> None:
        """The run was lost: drop its writer's chunk."""
        k = res.chunk.index
        if self.current.get(k) is res:
            del self.current[k]
        if self.store is not None:
            self.store.discard(k, res.attempt)
        # the next chunk's map came from this run's tail: the re-run joins it again (same values)
        # so that its own tail is cross-faded too
        if k + 1 in self.maps and k not in self._joining:
            del self.maps[k + 1]
        try:
            res.writer.abort.remote(res.key)
        except Exception:  # noqa: BLE001 - the writer itself may be gone
            pass

    def reuse(self, chunk: Chunk, files: list[StoredBatch]) -> None:
        raise ValueError("chunks kept by an earlier driver are written on the driver, not here")

    def pump(self) -> None:
        """Advance the seams with whatever has arrived; never blocks."""
        self._poll_joins()
        for k, res in sorted(self.current.items()):
            if k in self.maps and k not in self._mapped and self._can_map(k):
                self._send_map(res)
        for k in range(len(self.chunks) - 1):
            prev, nxt = self.current.get(k), self.current.get(k + 1)
            if (prev is None or nxt is None or k in self._joining or k + 1 in self.maps
                    or k not in self.maps or nxt.head is None and nxt.chunk.overlap):
                continue
            self._joining.add(k)
            self._joins[prev.writer.join.remote(prev.key, nxt.head, self.timeout_s)] = (k, prev.key)

    @property
    def done(self) -> bool:
        return all(k in self.maps for k in range(len(self.chunks)))

    # -- the end ----------------------------------------------------------------------------------

    def finish(self) -> list[WriteStats]:
        """Wait for every seam and close every chunk's parts; returns their statistics."""
        deadline = time.monotonic() + self.timeout_s
        while self._joins or not self.done:
            if time.monotonic() > deadline:
                raise TimeoutError("the chunk writers did not join their seams in time")
            if self._joins:
                ray.wait(list(self._joins), num_returns=1, timeout=1.0)
            self.pump()
            if not self._joins and not self.done:
                missing = [k for k in range(len(self.chunks)) if k not in self.maps]
                raise RuntimeError(f"chunks {missing} have no map and nothing is joining them")
        for facts in ray.get(self._map_calls, timeout=self.timeout_s):
            self._count(facts)
        refs = {res.writer.finish.remote(res.key, self.timeout_s): k for k, res in self.current.items()}
        for ref, k in refs.items():
            self.stats[k] = ray.get(ref, timeout=self.timeout_s)
            self._count({"written": self.stats[k].late})
        return [self.stats[k] for k in sorted(self.stats)]

    def abort(self) -> None:
        """Drop every chunk of the job on every writer, and every part written."""
        import shutil

        for w in self.writers.values():
            try:
                ray.get(w.abort_job.remote(self.job_tag + ":"), timeout=30)
            except Exception:  # noqa: BLE001 - nothing to save
                pass
        self.writers.clear()
        shutil.rmtree(self.parts_root, ignore_errors=True)

    def release(self) -> None:
        """Done with the writers (they stay for later jobs); notes where the job's writers ran and
        the CPU seconds each used for it (`writer_info`)."""
        for node, w in self.writers.items():
            if node not in self._cpu0:
                continue  # started, never used by this job
            try:
                info = ray.get(w.info.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a writer that is gone has nothing to tell
                continue
            info["cpu_seconds"] = round(info["cpu_seconds"] - self._cpu0[node], 3)
            self.writer_info.append(info)
        self.writers.clear()

    # -- internals --------------------------------------------------------------------------------

    def _writer(self, node_id: str | None) -> Any:
        node_id = node_id or ray.get_runtime_context().get_node_id()
        if node_id not in self.writers:
            self.writers[node_id] = writer_on(node_id, self.idle_s)
        return self.writers[node_id]

    def _used(self, node_id: str | None) -> Any:
        """The node's writer, with its CPU counter noted when this job first uses it."""
        node_id = node_id or ray.get_runtime_context().get_node_id()
        writer = self._writer(node_id)
        if node_id not in self._cpu0:
            self._cpu0[node_id] = ray.get(writer.info.remote(), timeout=self.timeout_s)["cpu_seconds"]
        return writer

    def _can_map(self, k: int) -> bool:
        return k == 0 or self.ranges is not None

    def _send_map(self, res: RemoteResults) -> None:
        k = res.chunk.index
        self._mapped.add(k)
        if k:
            self._map_calls.append(res.writer.set_map.remote(res.key, self.maps[k], self.ranges))

    def _count(self, facts: dict[str, Any]) -> None:
        frames, secs = facts.get("written") or (0, 0.0)
        if frames and self.on_written is not None:
            self.on_written(frames, secs)

    def _poll_joins(self) -> None:
        if not self._joins:
            return
        ready, _ = ray.wait(list(self._joins), num_returns=len(self._joins), timeout=0)
        for ref in ready:
            k, key = self._joins.pop(ref)
            self._joining.discard(k)
            current = self.current.get(k)
            try:
                out = ray.get(ref)
            except Exception:
                if current is not None and current.key == key:
                    raise
                continue  # a run that was dropped meanwhile: its re-run joins again
            if current is None or current.key != key:
                continue
            self._count(out)
            self.maps[k + 1] = out["fits"]
            if out["seam"] is not None and self.chunks[k + 1].overlap:
                self.seams.append(out["seam"])
            self.warnings.extend(out["warnings"])
            if out.get("ranges") is not None and self.ranges is None:
                self.ranges = out["ranges"]
