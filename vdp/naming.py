"""Output names that carry the input's stem, and the guard against overwriting earlier results (no torch).

VR players and headset folders hold the results of many videos side by side, so each output
is named after its input, with the tokens players read the projection and stereo layout from
(the convention of iw3 and most VR players)::

    holiday.mp4 -> holiday_LRF_Full_SBS.mp4, holiday_180x180_LR.mp4, holiday_depth.mp4, ...

The suffix of each kind is its `vdp.catalog` entry's ``input_suffix``. A job refuses to write
into a folder that already holds any of its outputs unless the spec says ``overwrite: true``
(``vdp run --overwrite``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from vdp.errors import SpecError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OutputExistsError(SpecError):
    """The output folder already holds outputs of this job and overwriting was not asked for."""


class OutputPathError(SpecError):
    """A job's output folder (``--out``) cannot be used: it is a file, cannot be created or
    cannot be written."""


def input_stem(input_path: str) -> str:
    """The input's file stem, made safe for an output name (``"My clip (1).mp4"`` -> ``"My_clip_1"``)."""
    stem = _UNSAFE.sub("_", Path(input_path).stem).strip("._-")
    return stem[:80] or "video"


def named_output(kind: str, stem: str) -> str:
    """``{stem}{suffix}`` of an output kind (its catalog entry's `input_suffix`), e.g.
    ``("sbs_full", "clip")`` -> ``clip_LRF_Full_SBS.mp4``.

    Raises:
        CatalogError: Unknown output kind.
    """
    from vdp import catalog

    return catalog.output(kind).name_for(stem)


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


def make_output_folder(out_dir: Path) -> None:
    """Create `out_dir` (and its parents) for a job's outputs, or say why it cannot be used.

    Raises:
        OutputPathError: `out_dir` is an existing file, cannot be created (e.g. a read-only
            or missing mount) or is not writable.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError(f"the output folder {out_dir} is a file; choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise OutputPathError(f"the output folder {out_dir} is not writable")
