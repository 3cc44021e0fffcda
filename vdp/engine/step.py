"""One guarded call into a stage, shared by the local runner and the Ray actor."""
from __future__ import annotations

import time
import weakref
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from vdp.errors import StageError, VdpError
from vdp.host_memory import reuse_for_frames
from vdp.stages.base import Stage
from vdp.types import FrameBatch

_PIXELS: weakref.WeakKeyDictionary[Stage, int] = weakref.WeakKeyDictionary()  # per stage: its frames' size


def process_step(stage: Stage, name: str, batch: FrameBatch, state: Any) -> tuple[FrameBatch, Any, float]:
    """Call `stage.process`, timing it and naming the stage and frames on failure.

    Returns:
        The stage's output batch, its new state and the seconds the call took.

    Raises:
        StageError: The stage raised something that is not already a `VdpError`.
    """
    t0 = time.perf_counter()
    _PIXELS[stage] = int(batch.frames.shape[-2] * batch.frames.shape[-1])
    try:
        with _memory_scope(stage):
            out, state = stage.process(batch, state)
    except VdpError:
        raise
    except Exception as exc:  # a model bug or OOM: name the stage and the frames
        first, last = int(batch.indices[0]), int(batch.indices[-1])
        raise StageError(f"stage {name!r} failed on frames {first}-{last}: {type(exc).__name__}: {exc}",
                         stage=name, first_frame=first, last_frame=last) from exc
    return out, state, time.perf_counter() - t0


def flush_step(stage: Stage, name: str, state: Any) -> tuple[FrameBatch | None, float]:
    """Call `stage.flush`, timing it and naming the stage on failure."""
    t0 = time.perf_counter()
    try:
        with _memory_scope(stage):
            out = stage.flush(state)
    except VdpError:
        raise
    except Exception as exc:
        raise StageError(f"stage {name!r} failed while flushing: {type(exc).__name__}: {exc}",
                         stage=name) from exc
    return out, time.perf_counter() - t0


def _memory_scope(stage: Stage) -> AbstractContextManager[None]:
    """A model computing on the CPU reuses the memory it frees from call to call and from
    stream to stream (no fresh, zeroed pages for every activation:
    `vdp.host_memory.reuse_freed_memory`, which hands the free pages back once the calls stop).
    Only for frames up to 4K (`vdp.host_memory.reuse_for_frames`)."""
    return reuse_for_frames(_PIXELS.get(stage, 0)) if stage.device.type == "cpu" else nullcontext()


def step_meta(out: FrameBatch | None, seconds: float) -> dict:
    """The progress record of one stage call: frames it emitted and its own busy seconds."""
    return {"frames": 0 if out is None else len(out), "seconds": seconds}
