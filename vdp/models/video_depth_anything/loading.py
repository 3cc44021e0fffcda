"""Building a Video Depth Anything model and loading official or synthetic weights."""
from __future__ import annotations

import torch

from vdp.models.state_dict import load_strict, package_manifest, read_state_dict
from vdp.models.synthetic import make_manifest, synthetic_state_dict
from vdp.models.video_depth_anything.configs import model_config
from vdp.models.video_depth_anything.video_depth import VideoDepthAnything
from vdp.models.weights import get_checkpoint, resolve_checkpoint

#: Negated in synthetic weights: with the pure rule the last conv's weights sum to < 0 and the
#: final ReLU zeroes almost all depth (see the parity README); the sign flip makes it non-degenerate.
SYNTHETIC_OVERRIDE = ("head.scratch.output_conv2.2.weight", "head.scratch.output_conv2.2.bias")


def build_model(name: str) -> VideoDepthAnything:
    """The model of checkpoint `name` on the meta device (no init cost); load with `load_strict`."""
    with torch.device("meta"):
        return VideoDepthAnything(**model_config(name))


def synthetic_weights(name: str, model: VideoDepthAnything) -> dict[str, torch.Tensor]:
    """Deterministic synthetic weights for checkpoint `name`, with the output-conv sign flip.

    The layout comes from the shipped manifest when there is one, else from `model`.
    """
    manifest = package_manifest(get_checkpoint(name)) or make_manifest(model.state_dict())["keys"]
    sd = synthetic_state_dict(manifest)
    for key in SYNTHETIC_OVERRIDE:
        sd[key] = -sd[key]
    return sd


def load_model(name: str, *, checkpoint: str | None = None, synthetic: bool = False) -> VideoDepthAnything:
    """Build checkpoint `name`'s model on the CPU with its weights, in eval mode.

    Args:
        name: Registry name (``vits`` ... ``metric_vitl``).
        checkpoint: Explicit checkpoint path (default: the model directory's official file).
        synthetic: Use `synthetic_weights` instead of a file.

    Raises:
        WeightsError: The checkpoint is missing (the message says how to fetch it), unreadable,
            or its keys/shapes differ from the model's (named in the message).
    """
    model = build_model(name)
    if synthetic:
        load_strict(model, synthetic_weights(name, model), source=f"synthetic weights for {name}")
    else:
        path = resolve_checkpoint(name, checkpoint)
        load_strict(model, read_state_dict(path), source=f"checkpoint {path}")
    return model.eval()
