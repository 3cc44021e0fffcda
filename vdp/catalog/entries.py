"""Catalog entries: what a stage or an output kind declares about itself.

An entry is data only (no torch, no model import): the class it describes is named by a
``"module:Class"`` path (or given as the class itself) and imported when a job builds it, so
spec validation, the CLI and the gateway read the catalog without loading any model.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Union

#: How the engine merges one layer across the overlap of two chunks (see `vdp.engine.merge`):
#: ``align`` relative values (least-squares scale/shift, then cross-fade), ``blend`` absolute
#: values (cross-fade only), ``keep`` the earlier chunk's values (the overlap only warmed up a
#: recurrent state). Layers a stage does not list are ``keep``.
MergePolicy = Literal["align", "blend", "keep"]

#: The layer every batch carries from decoding: its RGB frames.
SOURCE_LAYERS: tuple[str, ...] = ("rgb",)

ClassRef = Union[str, type]
MergeRule = Union[Mapping[str, MergePolicy], Callable[[Any], Mapping[str, MergePolicy]]]


def resolve(ref: ClassRef) -> type:
    """The class a ``"module:Class"`` path names (a class is returned as is)."""
    if isinstance(ref, type):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class StageEntry:
    """One stage of the catalog.

    Attributes:
        name: Key under ``stages`` in a job spec, progress and report key, actor name part.
        stage: The `vdp.stages.base.Stage` subclass (or its ``"module:Class"`` path); the
            engine builds it with ``Stage.from_job(options, spec)``.
        options: Pydantic model of the stage's options (the value under ``stages.<name>``).
        produces: Layers the stage adds to every batch (or replaces, like ``refine``).
        requires: Layers an earlier stage of the job must produce.
        cost: Relative compute per frame, for planning replicas before any actor has measured
            its own (the depth model is the reference heavyweight).
        merge: Policy of each produced layer across chunk overlaps: a mapping, or a function of
            the `JobSpec` returning one (e.g. relative depth aligns, metric depth blends).
    """

    name: str
    stage: ClassRef
    options: type
    produces: tuple[str, ...]
    requires: tuple[str, ...] = ()
    cost: float = 1.0
    merge: MergeRule = field(default_factory=dict)

    def stage_class(self) -> type:
        return resolve(self.stage)

    def merge_policies(self, spec: Any) -> dict[str, MergePolicy]:
        rule = self.merge(spec) if callable(self.merge) else self.merge
        return dict(rule)


@dataclass(frozen=True)
class OutputEntry:
    """One output kind of the catalog.

    Attributes:
        kind: Value of ``outputs[].kind`` in a job spec.
        output: The `vdp.outputs.base.Output` subclass (or its ``"module:Class"`` path).
        needs: Layers the output reads (``rgb`` is always there).
        file_name: Default file (or folder) name inside the job's output directory.
        media_type: What a client receives when it downloads the output (folders are served
            as ZIP archives).
        folder: The output is a folder of files rather than one file.
        description: One line for listings.
        input_suffix: What follows the input's stem when outputs are named after the input
            (``clip`` -> ``clip_LRF_Full_SBS.mp4``, see `vdp.naming`); default ``_`` + `file_name`.
        depth_kind: The kind of depth the output needs (``metric``: a point cloud needs a
            scale), None for any.
        parts: How the output is written in parts where its chunks ran and joined at the end
            (`vdp.outputs.parts`): ``frames`` (a folder of per-frame files) or ``video`` (a
            video encoded per chunk, joined without re-encoding); None: written in one piece
            by the driver.
        max_side: For outputs that show depth as a picture: the default longest side of each
            picture (each half of a side-by-side), beyond which it is scaled down (the spec's
            ``max_side`` changes it). None: the output keeps the source's size.
    """

    kind: str
    output: ClassRef
    needs: tuple[str, ...]
    file_name: str
    media_type: str
    folder: bool = False
    description: str = ""
    input_suffix: str = ""
    depth_kind: str | None = None
    parts: str | None = None
    max_side: int | None = None

    def output_class(self) -> type:
        return resolve(self.output)

    def name_for(self, stem: str | None) -> str:
        """File name inside the output directory: `file_name`, or named after the input's `stem`."""
        return self.file_name if stem is None else f"{stem}{self.input_suffix or '_' + self.file_name}"
