"""Helpers of the output tests: a stage's layers computed directly (no engine, no writers)."""
from __future__ import annotations

from pathlib import Path

from vdp.io import iter_batches, probe
from vdp.types import FrameBatch


def stage_layers(stage, clip: Path, frames: int) -> FrameBatch:
    """Every batch `stage` gives (set up on the CPU here) for the first `frames` frames of `clip`,
    joined."""
    stage.setup("cpu")
    state = stage.init_state(probe(clip))
    outs = []
    for batch in iter_batches(clip, batch_frames=frames, stop_frame=frames):
        out, state = stage.process(batch, state)
        outs.append(out)
    outs.append(stage.flush(state))
    return FrameBatch.concat([o for o in outs if o is not None and len(o)])
