"""Building a Robust Video Matting model and loading official or synthetic weights."""
from __future__ import annotations

from vdp.models.rvm.model import MattingNetwork
from vdp.models.state_dict import load_strict, read_state_dict
from vdp.models.synthetic import make_manifest, synthetic_state_dict
from vdp.models.weights import resolve_checkpoint


def load_model(variant: str, *, refiner: str = "deep_guided_filter", checkpoint: str | None = None,
               synthetic: bool = False) -> MattingNetwork:
    """Build the `variant` model with `refiner` on the CPU with its weights, in eval mode.

    Args:
        variant: ``mobilenetv3`` or ``resnet50``.
        refiner: ``deep_guided_filter`` or ``fast_guided_filter`` (official checkpoints hold
            the deep guided filter's weights; they are dropped for the fast one, which has none).
        checkpoint: Explicit checkpoint path (default: the model directory's official file).
        synthetic: Deterministic synthetic weights instead of a file.

    Raises:
        WeightsError: The checkpoint is missing (the message says how to fetch it), unreadable,
            or its keys/shapes differ from the model's (named in the message).
    """
    model = MattingNetwork(variant, refiner=refiner)
    if synthetic:
        state_dict = synthetic_state_dict(make_manifest(model.state_dict())["keys"])
        source = f"synthetic weights for rvm_{variant}"
    else:
        path = resolve_checkpoint("rvm_" + variant, checkpoint)
        state_dict = read_state_dict(path)
        if refiner == "fast_guided_filter":
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith("refiner.")}
        source = f"checkpoint {path}"
    load_strict(model, state_dict, source=source)
    return model.eval()
