"""Reading checkpoints and checking their layout (keys and shapes) before a strict load."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from vdp.errors import WeightsError
from vdp.models.synthetic import Manifest, load_manifest
from vdp.models.weights import Checkpoint

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"

Layout = Mapping[str, tuple[int, ...]]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint's state dict on the CPU (``weights_only``: no code runs).

    A dict with a ``state_dict`` or ``model`` entry holding the tensors is unwrapped.

    Raises:
        WeightsError: The file cannot be read or holds no state dict.
    """
    try:
        obj: Any = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt / non-checkpoint files
        raise WeightsError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"checkpoint {path} does not hold a state dict of tensors")
    return obj


def layout_of(tensors: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a state dict."""
    return {k: tuple(v.shape) for k, v in tensors.items()}


def manifest_layout(manifest: Manifest) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a manifest ``keys`` mapping."""
    return {k: tuple(v["shape"]) for k, v in manifest.items()}


def layout_problems(found: Layout, expected: Layout, *, limit: int = 8) -> str | None:
    """Describe how `found` differs from `expected`, or None when keys and shapes are equal."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k}: {list(found[k])} vs expected {list(expected[k])}"
              for k in expected if k in found and tuple(found[k]) != tuple(expected[k])]

    def part(title: str, items: list[str]) -> str:
        more = f", … ({len(items) - limit} more)" if len(items) > limit else ""
        return f"{title} ({len(items)}): {', '.join(items[:limit])}{more}"

    parts = [part(t, i) for t, i in (("missing keys", missing), ("unexpected keys", unexpected),
                                     ("shape mismatches", shapes)) if i]
    return "; ".join(parts) or None


def load_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Load `state_dict` into `model` with every key and shape checked first.

    The tensors are assigned (no copy), so `model` may live on the meta device.

    Args:
        model: The module.
        state_dict: Its weights.
        source: What the weights are (a path), for the error message.

    Raises:
        WeightsError: Keys or shapes differ; the message names them.
    """
    problems = layout_problems(layout_of(state_dict), layout_of(model.state_dict()))
    if problems:
        raise WeightsError(f"{source} does not match {type(model).__name__}: {problems}")
    model.load_state_dict(state_dict, strict=True, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise WeightsError(f"{source} left {len(left)} tensors unset, e.g. {left[0]}")


def package_manifest(ckpt: Checkpoint) -> Manifest | None:
    """The manifest shipped with vdp for `ckpt` (``vdp/models/manifests/<ckpt.manifest>``), if any."""
    if not ckpt.manifest:
        return None
    path = MANIFEST_DIR / ckpt.manifest
    return load_manifest(path) if path.is_file() else None
