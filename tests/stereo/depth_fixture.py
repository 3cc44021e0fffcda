"""One set-up synthetic-weight depth stage shared by the stereo tests (loading takes seconds)."""
from __future__ import annotations

import functools

import torch

from vdp.spec import DepthSpec
from vdp.stages.depth import DepthStage


class LoadedDepthStage(DepthStage):
    """A DepthStage whose `setup` loads the model only the first time (runners call it again)."""

    def setup(self, device: torch.device | str) -> None:
        if self.model is None:
            super().setup(device)


@functools.cache
def synthetic_depth_stage() -> LoadedDepthStage:
    """VDA-S with synthetic weights at input size 56, fp32, on the CPU."""
    stage = LoadedDepthStage(DepthSpec(model="vits", input_size=56, synthetic_weights=True),
                             precision="fp32")
    stage.setup("cpu")
    return stage
