"""Fault handling for chunk runs: is a failure a lost actor (re-run the chunk) or the job's end?

When a model actor dies (its process killed, its node lost), every run that used it fails at
its next result. `classify` tells that apart from a stage's own error, `RetryPolicy` decides
whether the chunk runs again (from its first frame, on the restarted actor or another replica)
or has failed too often, and `DroppedRefs` reads the errors of what the lost runs left in
flight so Ray does not log them as unhandled. The merge ignores frames it already has and the
stages are deterministic, so a re-run changes nothing in the output.
"""
from __future__ import annotations

from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from vdp.engine.actor import StreamLostError
from vdp.engine.chunks import Chunk
from vdp.engine.ledger import Ledger
from vdp.engine.ray_errors import actor_died, cause_of, to_vdp_error
from vdp.errors import StageError, VdpError


def classify(exc: BaseException, chunk: int, opens: list[Any]) -> str:
    """The reason to re-run chunk `chunk` after `exc`; raises the error that fails the job
    instead when `exc` is not a lost actor (`opens`: the refs of the run's ``open`` calls,
    whose error explains a stream that was never opened)."""
    cause = cause_of(exc)
    if isinstance(cause, StreamLostError):
        raise_open_error(opens)
        return f"a model actor restarted ({cause})"
    if actor_died(exc):
        return f"a model actor died ({type(cause).__name__})"
    raise to_vdp_error(exc, f"chunk {chunk}")


def raise_open_error(opens: list[Any]) -> None:
    """A stream that was never opened: surface the stage's own `init_state` error."""
    if not opens:
        return
    ready, _ = ray.wait(opens, num_returns=len(opens), timeout=0)
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

    def lost(self, chunk: Chunk, attempt: int, reason: str) -> None:
        """Record that run `attempt` of `chunk` was lost; the caller runs it again.

        Raises:
            StageError: The chunk has now failed `max_attempts` times.
        """
        self.retries.append({"chunk": chunk.index, "attempt": attempt, "reason": reason})
        if attempt >= self.max_attempts:
            raise StageError(f"chunk {chunk.index} (frames {chunk.run_start}-{chunk.stop - 1}) failed "
                             f"{attempt} times, last: {reason}")
        self.ledger.append("retry", chunk=chunk.index, attempt=attempt, reason=reason)


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
