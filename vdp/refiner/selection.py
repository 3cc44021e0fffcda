"""Checkpoint selection while training: keep the weights that are consistent without doing harm.

Every ``select_every`` steps the model in training refines a small fixed set of procedural
validation clips (seeds from ``VAL_SEED_BASE + SELECT_SEED_OFFSET``, one teacher family each
from the run's training families; never the test split) and gets the score

    ``TAE / TAE_teacher + HARM_WEIGHT * frames_worse / frames``

(lower is better; TAE with ground-truth poses, a frame is worse when its AbsRel exceeds the
teacher's by more than `WORSE_FRAME_ABSREL`). An identity refiner scores 1; one that halves
TAE but makes 10 % of the frames worse scores 0.5 + 2 * 0.1 = 0.7, as much as one that removes
only 30 % of TAE without harm. The best-scoring weights are the ones saved.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vdp.models.refiner.model import Refiner
from vdp.refiner.evaluate import WORSE_FRAME_ABSREL, EvalSequence, score, synthetic_sequences
from vdp.refiner.inference import refine_depth
from vdp.refiner.splits import VAL_SEED_BASE

#: Selection clips start here within the validation seed range (apart from eval's tuning clips).
SELECT_SEED_OFFSET = 10_000
#: Weight of the share of frames made worse, against the relative TAE.
HARM_WEIGHT = 2.0


@dataclass
class SelectionSet:
    """The fixed validation clips and the teacher's own TAE on them."""

    sequences: list[EvalSequence]
    teacher_tae: float


def selection_set(families: tuple[str, ...], *, clips_per_family: int = 1, frames: int = 48,
                  height: int = 96, width: int = 128) -> SelectionSet:
    """Render the selection clips (deterministic) and score the raw teacher on them."""
    seqs: list[EvalSequence] = []
    for fam in families:
        seqs += synthetic_sequences(VAL_SEED_BASE + SELECT_SEED_OFFSET, clips_per_family,
                                    frames=frames, height=height, width=width, family=fam)
    teacher = score([s.teacher for s in seqs], seqs, tae=True)
    return SelectionSet(seqs, float(teacher["tae"]))


def selection_score(model: Refiner, sel: SelectionSet) -> dict[str, Any]:
    """Refine the selection clips with `model` (eval mode, no grad) and score it."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            preds = [refine_depth(model, s.teacher, rgb=s.rgb) for s in sel.sequences]
    finally:
        model.train(was_training)
    m = score(preds, sel.sequences, tae=True, per_frame=True)
    pf = m["per_frame"]
    worse_share = pf["frames_worse"] / max(pf["frames"], 1)
    return {"score": m["tae"] / sel.teacher_tae + HARM_WEIGHT * worse_share,
            "abs_rel": m["abs_rel"], "tae": m["tae"], "frames_worse": pf["frames_worse"],
            "frames": pf["frames"], "worst_delta": pf["worst_delta"],
            "worse_threshold": WORSE_FRAME_ABSREL}
