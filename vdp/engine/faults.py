"""Fault handling for chunk runs: is a failure a lost actor (re-run the chunk) or the job's end?

When a model actor dies (its process killed, its node lost), every run that used it fails at
its next result. `classify` tells that apart from a stage's own error, `RetryPolicy` decides
whether the chunk runs again (from its first frame, on the restarted actor or another replica)
or has failed too often, and `DroppedRefs` reads the errors of what the lost runs left in
flight so Ray does not log them as unhandled. The merge ignores frames it already has and the
stages are deterministic, so a re-run changes nothing in the output.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from vdp.engine.actor import StreamLostError
from vdp.engine.ledger import Ledger
from vdp.engine.ray_errors import actor_died, cause_of, to_vdp_error
from vdp.errors import StageError, VdpError

if TYPE_CHECKING:
    from vdp.engine.chunk_run import ChunkRun


def classify(exc: BaseException, run: "ChunkRun") -> str:
    """The reason to re-run `run`'s chunk; raises the error that fails the job instead when
    `exc` is not a lost actor."""
    cause = cause_of(exc)
    if isinstance(cause, StreamLostError):
        raise_open_error(run)
        return f"a model actor restarted ({cause})"
    if actor_died(exc):
        return f"a model actor died ({type(cause).__name__})"
    raise to_vdp_error(exc, f"chunk {run.chunk.index}")


def raise_open_error(run: "ChunkRun") -> None:
    """A stream that was never opened: surface the stage's own `init_state` error."""
    ready, _ = ray.wait(run.opens, num_returns=len(run.opens), timeout=0)
    for ref in ready:
        try:
            ray.get(ref)
        except RayTaskError as exc:
            if isinstance(exc.cause, VdpError):
                raise exc.cause from None
        except RayActorError:
            continue


class RetryPolicy:
    """Re-run a lost chunk until it has run `max_attempts` times.

    Args:
        ledger: Receives a ``retry`` event per re-run.
        max_attempts: Runs of one chunk (across drivers) before the job fails.
    """

    def __init__(self, ledger: Ledger, max_attempts: int) -> None:
        self.ledger = ledger
        self.max_attempts = max_attempts
        #: Chunk runs lost to actor faults: chunk, attempt, reason.
        self.retries: list[dict[str, Any]] = []

    def lost(self, run: "ChunkRun", reason: str) -> None:
        """Record the lost run.

        Raises:
            StageError: The chunk has now failed `max_attempts` times.
        """
        self.retries.append({"chunk": run.chunk.index, "attempt": run.attempt, "reason": reason})
        if run.attempt >= self.max_attempts:
            c = run.chunk
            raise StageError(f"chunk {c.index} (frames {c.run_start}-{c.stop - 1}) failed "
                             f"{run.attempt} times, last: {reason}")
        self.ledger.append("retry", chunk=run.chunk.index, attempt=run.attempt, reason=reason)


class DroppedRefs:
    """Refs of lost runs, whose errors are read (not logged by Ray as unhandled)."""

    def __init__(self) -> None:
        self.refs: list[Any] = []

    def add(self, refs: list[Any]) -> None:
        self.refs.extend(refs)

    def read(self) -> None:
        """Read the errors of the dropped refs that are in."""
        if self.refs:
            ready, _ = ray.wait(self.refs, num_returns=len(self.refs), timeout=0)
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception:  # noqa: BLE001 - expected: these runs were lost
                    pass
        self.refs = []
