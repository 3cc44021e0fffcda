"""Test videos made by concatenating pieces of different real clips (known cut positions)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from vdp.io import iter_batches
from vdp.io.writers import Mp4Writer

MEDIA = Path(__file__).resolve().parents[1] / "resources" / "media"

#: Real clips and the frame ranges inside them free of cuts (the rooftop clip has jump cuts
#: at frames 18, 45 and 276, see vdp/analysis/scenecut.py).
CLIPS: dict[str, tuple[int, int]] = {
    "sam2__05_default_juggle.mp4": (0, 247),
    "sam2__bedroom.mp4": (0, 200),
    "androidx__sample_with_increasing_timestamps_360p.mp4": (50, 270),
    "decord__flipping_a_pancake.mkv": (0, 310),
    "androidx__bear-vp9-odd-dimensions.webm": (0, 30),
}


@dataclass(frozen=True)
class Piece:
    clip: str
    start: int
    frames: int


def decode_piece(piece: Piece, size: tuple[int, int]) -> torch.Tensor:
    """Frames ``[T,3,H,W]`` uint8 of `piece`, resized (area) to ``size = (H, W)``."""
    out = []
    for b in iter_batches(MEDIA / piece.clip, batch_frames=32, start_frame=piece.start,
                          stop_frame=piece.start + piece.frames):
        out.append(F.interpolate(b.frames.float(), size=size, mode="area").round().to(torch.uint8))
    return torch.cat(out)


def write_concat(parts: list[torch.Tensor], path: Path, fps: float = 30.0) -> list[int]:
    """Encode the parts one after another as H.264; returns the first frame index of each
    part after the first (the true cuts)."""
    cuts, n = [], 0
    with Mp4Writer(path, fps=fps, crf=20, preset="veryfast") as w:
        for i, p in enumerate(parts):
            if i:
                cuts.append(n)
            w.write(p)
            n += len(p)
    return cuts
