"""Ray's exceptions translated into vdp's, in one place.

A stage's own error (a `VdpError` raised inside an actor) reaches the caller as itself; any
other failure inside an actor becomes a `StageError` naming what was being done; an actor that
died is told apart (`actor_died`) so the scheduler can re-run its work instead of failing.
"""
from __future__ import annotations

from typing import Any

import ray
from ray.exceptions import (GetTimeoutError, ObjectLostError, OwnerDiedError, RayActorError,
                            RayTaskError)

from vdp.engine.chain import ReportLostError
from vdp.errors import StageError, VdpError
from vdp.stages.base import StageReport

#: Failures that mean the object's producer (an actor) is gone, not that the work was wrong.
LOST = (RayActorError, ObjectLostError, OwnerDiedError)


def cause_of(exc: BaseException) -> BaseException:
    """What was raised inside the actor (a `RayTaskError`'s cause; `exc` itself otherwise).

    An actor whose constructor raised dies with that error as its cause: it is returned too.
    """
    if isinstance(exc, RayTaskError) and isinstance(exc.cause, BaseException):
        return exc.cause
    if isinstance(exc, RayActorError):
        inner = getattr(getattr(exc, "cause", None), "cause", None)
        if isinstance(inner, VdpError):
            return inner
    return exc


def actor_died(exc: BaseException) -> bool:
    """Whether `exc` says the actor (or the object it made) is gone."""
    return isinstance(cause_of(exc), LOST)


def to_vdp_error(exc: BaseException, what: str) -> VdpError:
    """The error to raise for `exc`: the stage's own `VdpError`, else a `StageError` saying
    `what` failed."""
    cause = cause_of(exc)
    if isinstance(cause, VdpError):
        return cause
    if isinstance(cause, LOST):
        return StageError(f"{what} failed: a stage actor died ({type(cause).__name__})")
    return StageError(f"{what} failed in a Ray actor: {cause}")


def get_report(ref: Any, timeout_s: float = 60.0) -> StageReport:
    """A stage's report from its ``close`` call.

    Raises:
        ReportLostError: The actor died (or did not answer in `timeout_s`).
    """
    try:
        return ray.get(ref, timeout=timeout_s)
    except (RayActorError, RayTaskError, GetTimeoutError, ObjectLostError, OwnerDiedError) as exc:
        raise ReportLostError(str(exc)) from None
