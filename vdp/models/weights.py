"""Registry of official checkpoints and the local model directory.

Nothing here downloads on import. `resolve_checkpoint` finds a file in the model directory
(``VDP_MODEL_DIR``, default ``~/.cache/vdp/models``) or raises `WeightsError` saying how to
get it; `vdp.models.fetch` downloads with progress when a network is available.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vdp.errors import WeightsError


@dataclass(frozen=True)
class Checkpoint:
    """One official checkpoint.

    Attributes:
        name: Registry name (what a JobSpec names).
        family: ``vda`` or ``rvm``.
        filename: File name in the model directory.
        url: Official download address.
        licence: SPDX id of the weights' licence.
        sha256: Expected digest when known, else None (fetch records the digest it saw).
        manifest: Parity manifest that describes the state dict layout.
    """

    name: str
    family: str
    filename: str
    url: str
    licence: str
    sha256: str | None = None
    manifest: str = ""

    @property
    def licence_warning(self) -> str | None:
        if self.licence.startswith("CC-BY-NC"):
            return f"{self.name}: weights are {self.licence} (non-commercial use only)"
        if self.licence.startswith("GPL"):
            return f"{self.name}: weights are {self.licence} (copyleft: outputs and derived works may be affected)"
        return None


_HF = "https://huggingface.co/depth-anything"
_RVM = "https://github.com/PeterL1n/RobustVideoMatting/releases/download/v1.0.0"

CHECKPOINTS: dict[str, Checkpoint] = {c.name: c for c in [
    Checkpoint("vits", "vda", "video_depth_anything_vits.pth",
               f"{_HF}/Video-Depth-Anything-Small/resolve/main/video_depth_anything_vits.pth",
               "Apache-2.0", manifest="vda/manifest_vits.json"),
    Checkpoint("vitb", "vda", "video_depth_anything_vitb.pth",
               f"{_HF}/Video-Depth-Anything-Base/resolve/main/video_depth_anything_vitb.pth",
               "CC-BY-NC-4.0"),
    Checkpoint("vitl", "vda", "video_depth_anything_vitl.pth",
               f"{_HF}/Video-Depth-Anything-Large/resolve/main/video_depth_anything_vitl.pth",
               "CC-BY-NC-4.0", manifest="vda/manifest_vitl.json"),
    Checkpoint("metric_vits", "vda", "metric_video_depth_anything_vits.pth",
               f"{_HF}/Metric-Video-Depth-Anything-Small/resolve/main/metric_video_depth_anything_vits.pth",
               "Apache-2.0", manifest="vda/manifest_metric_vits.json"),
    Checkpoint("metric_vitb", "vda", "metric_video_depth_anything_vitb.pth",
               f"{_HF}/Metric-Video-Depth-Anything-Base/resolve/main/metric_video_depth_anything_vitb.pth",
               "CC-BY-NC-4.0"),
    Checkpoint("metric_vitl", "vda", "metric_video_depth_anything_vitl.pth",
               f"{_HF}/Metric-Video-Depth-Anything-Large/resolve/main/metric_video_depth_anything_vitl.pth",
               "CC-BY-NC-4.0"),
    Checkpoint("rvm_mobilenetv3", "rvm", "rvm_mobilenetv3.pth", f"{_RVM}/rvm_mobilenetv3.pth",
               "GPL-3.0", manifest="rvm/manifest_mobilenetv3.json"),
    Checkpoint("rvm_resnet50", "rvm", "rvm_resnet50.pth", f"{_RVM}/rvm_resnet50.pth",
               "GPL-3.0", manifest="rvm/manifest_resnet50.json"),
]}


def model_dir() -> Path:
    """The directory checkpoints live in (``VDP_MODEL_DIR`` or ``~/.cache/vdp/models``)."""
    return Path(os.environ.get("VDP_MODEL_DIR") or Path.home() / ".cache" / "vdp" / "models")


def get_checkpoint(name: str) -> Checkpoint:
    """Registry entry by name, or `WeightsError` listing the known names."""
    try:
        return CHECKPOINTS[name]
    except KeyError:
        raise WeightsError(f"unknown checkpoint {name!r}; known: {', '.join(CHECKPOINTS)}") from None


def resolve_checkpoint(name: str, explicit_path: str | None = None) -> Path:
    """Path of a checkpoint file that exists.

    Args:
        name: Registry name.
        explicit_path: A user-given path that takes precedence over the model directory.

    Returns:
        The checkpoint path.

    Raises:
        WeightsError: The file is missing; the message says how to get it.
    """
    ckpt = get_checkpoint(name)
    path = Path(explicit_path).expanduser() if explicit_path else model_dir() / ckpt.filename
    if path.is_file():
        return path
    raise WeightsError(
        f"checkpoint for {name!r} not found at {path}. Get it with `vdp models fetch {name}` "
        f"(needs network), or download {ckpt.url} yourself and place it there (or set "
        f"VDP_MODEL_DIR / pass a checkpoint path). For a pipeline test without real weights, "
        f"use --synthetic-weights (output is not real depth/alpha)."
    )
