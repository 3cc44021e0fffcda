"""Saving and loading refiner checkpoints (the shipped one lives beside this file)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vdp.errors import WeightsError
from vdp.models.refiner.config import RefinerConfig
from vdp.models.refiner.model import Refiner
from vdp.models.state_dict import load_strict

#: The checkpoint that ships with vdp (and its config + metrics sidecar).
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "refiner_v1.pt"
SHIPPED_METADATA = SHIPPED_CHECKPOINT.with_suffix(".json")
FORMAT = "vdp-refiner"
FORMAT_VERSION = 1


def save_refiner(model: Refiner, path: str | Path, metadata: dict[str, Any] | None = None) -> None:
    """Write ``path`` (weights + config) and, with `metadata`, a ``.json`` sidecar beside it.

    The sidecar is written as given, plus the model config under ``config``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).clone() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "config": model.config.to_dict(),
               "state_dict": state}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    if metadata is not None:
        meta = {**metadata, "config": model.config.to_dict()}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_refiner(path: str | Path | None = None, *, map_location: str | torch.device = "cpu") -> Refiner:
    """Build a `Refiner` from a checkpoint (default: the shipped one), in eval mode.

    Raises:
        WeightsError: The file is missing, not a refiner checkpoint, or does not match its config.
    """
    path = Path(path).expanduser() if path is not None else SHIPPED_CHECKPOINT
    if not path.is_file():
        raise WeightsError(f"refiner checkpoint not found at {path}; train one with "
                           f"`vdp refiner train --out DIR` or leave the path unset for the shipped one")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for a broken file
        raise WeightsError(f"cannot read refiner checkpoint {path}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a vdp refiner checkpoint (no format={FORMAT!r} entry)")
    if payload.get("version") != FORMAT_VERSION:
        raise WeightsError(f"{path} has refiner format version {payload.get('version')}, "
                           f"this vdp reads version {FORMAT_VERSION}")
    model = Refiner(RefinerConfig.from_dict(payload["config"]))
    load_strict(model, payload["state_dict"], source=f"refiner checkpoint {path}")
    return model.eval()
