"""Training, evaluation and streaming of the SSM temporal refiner (model: `vdp.models.refiner`).

* `synthetic` / `teacher`: procedural RGB + metric depth videos and the teacher simulator;
* `rgbd`: real RGB-D sequences in a documented folder layout;
* `sampling`, `losses`, `train`: the training recipe (``vdp refiner train``);
* `metrics`, `baselines`, `evaluate`: the held-out table (``vdp refiner eval``);
* `windows`, `inference`, `depth_kind`: windows, blending and metric/relative handling,
  shared with `vdp.stages.refine`.
"""
from vdp.refiner.inference import PositiveDepth, make_window_fn, refine_depth
from vdp.refiner.windows import StreamState, WindowedStream, refine_sequence

__all__ = ["PositiveDepth", "StreamState", "WindowedStream", "make_window_fn", "refine_depth",
           "refine_sequence"]
