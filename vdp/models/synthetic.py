"""Deterministic synthetic weights (the shared parity rule), for tests and demos without checkpoints.

A manifest maps each state-dict key to its shape and dtype. `synthetic_state_dict` fills every
key with values that depend only on the key name and shape (seeded by CRC32 of the key), so
independent implementations with the same parameter names get identical weights. This is the
same rule as the parity fixtures' ``synthetic_weights.py``.
"""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Any, Mapping

import torch

Manifest = dict[str, dict[str, Any]]

_INT_DTYPES = {"int64", "int32", "long"}


def load_manifest(path: str | Path) -> Manifest:
    """The ``keys`` mapping of a manifest file: {name: {"shape": [...], "dtype": "float32"}}."""
    return json.loads(Path(path).read_text())["keys"]


def synthetic_tensor(key: str, shape: list[int], dtype: str = "float32") -> torch.Tensor:
    """One tensor seeded by the CRC32 of `key`, scaled so activations stay O(1).

    Args:
        key: State-dict key.
        shape: Tensor shape.
        dtype: Manifest dtype name; integer dtypes give zeros (e.g. ``num_batches_tracked``).

    Returns:
        float32 (or int64) tensor of `shape`.
    """
    if dtype in _INT_DTYPES:
        return torch.zeros(shape, dtype=torch.int64)
    gen = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    noise = torch.randn(shape, generator=gen, dtype=torch.float64)
    leaf = key.rsplit(".", 1)[-1]
    if len(shape) >= 2:
        out = noise / math.sqrt(max(1, math.prod(shape[1:])))
    elif leaf == "running_var":
        out = 1.0 + 0.1 * noise.abs()
    elif leaf in ("weight", "gamma"):
        out = 1.0 + 0.05 * noise
    else:
        out = 0.05 * noise
    return out.to(torch.float32)


def synthetic_state_dict(manifest: Mapping[str, Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """A full state dict for `manifest` (see `synthetic_tensor`)."""
    return {k: synthetic_tensor(k, list(v["shape"]), v.get("dtype", "float32")) for k, v in manifest.items()}


def make_manifest(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Manifest]:
    """The manifest of an existing state dict, ``{"keys": {...}}`` (to compare layouts)."""
    return {"keys": {k: {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")}
                     for k, t in state_dict.items()}}
