"""Output names that carry the input's stem, and the guard against overwriting earlier results (no torch).

VR players and headset folders hold the results of many videos side by side, so each output
is named after its input, with the tokens players read the projection and stereo layout from
(the convention of iw3 and most VR players)::

    holiday.mp4 -> holiday_LRF_Full_SBS.mp4, holiday_180x180_LR.mp4, holiday_depth.mp4, ...

A job refuses to write into a folder that already holds any of its outputs unless the spec
says ``overwrite: true`` (``vdp run --overwrite``).
"""
from __future__ import annotations

import re
from pathlib import Path

from vdp.errors import SpecError

#: Suffix (after the input's stem) of each output kind.
SUFFIXES: dict[str, str] = {
    "depth_npz": "_depth.npz", "depth_npy": "_depth_npy", "depth_png16": "_depth_png16",
    "depth_color_mp4": "_depth.mp4", "depth_preview_mp4": "_depth_preview.mp4",
    "alpha_mp4": "_alpha.mp4", "foreground_webm": "_foreground.webm", "rgba_png": "_rgba_png",
    "composite_mp4": "_composite.mp4",
    "sbs_full": "_LRF_Full_SBS.mp4", "sbs_half": "_LR_Half_SBS.mp4",
    "tb_full": "_Full_TB.mp4", "tb_half": "_Half_TB.mp4", "anaglyph": "_Anaglyph.mp4",
    "vr180_sbs": "_180x180_LR.mp4", "depth_exr": "_depth_exr", "point_cloud_ply": "_points_ply",
    "prores4444_mov": "_ProRes4444_alpha.mov", "foreground_mp4": "_foreground.mp4", "alpha_png16": "_alpha_png16",
    "sbs_cross": "_RLF_Cross_SBS.mp4", "rgbd": "_RGBD.mp4", "anaglyph_444": "_Anaglyph_444.mp4",
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OutputExistsError(SpecError):
    """The output folder already holds outputs of this job and overwriting was not asked for."""


def input_stem(input_path: str) -> str:
    """The input's file stem, made safe for an output name (``"My clip (1).mp4"`` -> ``"My_clip_1"``)."""
    stem = _UNSAFE.sub("_", Path(input_path).stem).strip("._-")
    return stem[:80] or "video"


def named_output(kind: str, stem: str) -> str:
    """``{stem}{suffix}`` of an output kind, e.g. ``("sbs_full", "clip")`` -> ``clip_LRF_Full_SBS.mp4``."""
    try:
        return f"{stem}{SUFFIXES[kind]}"
    except KeyError:
        raise SpecError(f"no file-name suffix for output kind {kind!r}") from None


def refuse_existing(out_dir: Path, names: list[str], *, overwrite: bool) -> None:
    """Raise `OutputExistsError` when `out_dir` already holds any of `names` (and their sidecars).

    Args:
        out_dir: The job's output folder.
        names: The job's output file/folder names.
        overwrite: Allow replacing them (nothing is checked).
    """
    if overwrite or not out_dir.is_dir():
        return
    taken = sorted(n for n in names if (out_dir / n).exists())
    if taken:
        raise OutputExistsError(f"{out_dir} already holds {', '.join(taken)}; pass --overwrite "
                                f"(spec: overwrite: true) to replace them, or choose another --out")
