"""Shared Video Depth Anything parity fixtures (tests/resources/parity/vda), for model and stage tests.

The goldens were produced by the official code (CPU, fp32) with the shared synthetic-weights rule;
(b), (c) and the vitl golden also negate ``head.scratch.output_conv2.2`` (see the fixture README).
Tolerance: max|ours - golden| <= 1e-4 * max|golden| (fp16-stored metric depth: 2e-3).
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import torch

from tests.resources.synthetic_weights import load_manifest, synthetic_state_dict

FIXTURES = Path(__file__).parent.parent / "resources" / "parity" / "vda"
TOL = 1e-4
TOL_FP16_STORED = 2e-3
OVERRIDE = ("head.scratch.output_conv2.2.weight", "head.scratch.output_conv2.2.bias")


def manifest_file(name: str) -> dict:
    """The whole manifest JSON (keys, model, source, constructor)."""
    return json.loads((FIXTURES / f"manifest_{name}.json").read_text())


@cache
def golden(name: str) -> dict[str, np.ndarray]:
    """All arrays of ``golden_<name>.npz`` plus its parsed ``meta``."""
    with np.load(FIXTURES / f"golden_{name}.npz") as z:
        out = {k: z[k] for k in z.files if k != "meta"}
        out["meta"] = json.loads(str(z["meta"]))
    return out


def golden_state_dict(name: str, *, override: bool) -> dict[str, torch.Tensor]:
    """The goldens' weights: the shared rule on the manifest, optionally with the sign flip."""
    sd = synthetic_state_dict(load_manifest(FIXTURES / f"manifest_{name}.json"))
    if override:
        for key in OVERRIDE:
            sd[key] = -sd[key]
    return sd


def clip_frames() -> torch.Tensor:
    """The 80-frame golden clip as RGB uint8 [80,3,48,72]."""
    return torch.from_numpy(golden("vits_video")["frames"]).permute(0, 3, 1, 2).contiguous()


def rel_err(ours: torch.Tensor | np.ndarray, ref: np.ndarray) -> float:
    """max|ours - ref| / max|ref|."""
    ours = ours.detach().cpu().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours)
    ref = np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        raise AssertionError(f"shape {ours.shape} != golden {ref.shape}")
    return float(np.abs(ours.astype(np.float64) - ref).max() / np.abs(ref).max())
