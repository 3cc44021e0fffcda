"""A text banner burnt into preview frames (e.g. "synthetic weights — not real depth")."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def text_mask(text: str, width: int, height: int) -> torch.Tensor:
    """A bool ``[H,W]`` mask of `text` on a top banner that fits `width`."""
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    size = max(10, min(height // 12, int(1.6 * width / max(len(text), 1))))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        font = ImageFont.load_default()
    draw.text((6, 4), text, fill=255, font=font, stroke_width=max(1, size // 10), stroke_fill=128)
    return torch.from_numpy(np.asarray(image).copy())


def stamp(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Frames uint8 ``[T,3,H,W]`` with the mask drawn white (255) over a dark outline (128)."""
    out = frames.clone()
    white, outline = mask == 255, mask == 128
    out[:, :, white] = 255
    out[:, :, outline] = 0
    return out
