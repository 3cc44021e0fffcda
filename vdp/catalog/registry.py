"""The catalog: every stage and output kind vdp knows, looked up by name.

The built-in entries (`vdp.catalog.builtin`) are registered on first use; a plugin or a test
adds its own with `register_stage` / `register_output`. Stages run in the order they were
registered (the built-ins: depth, refine, matte, stereo).
"""
from __future__ import annotations

from typing import Any, Iterable

from vdp.catalog.entries import SOURCE_LAYERS, MergePolicy, OutputEntry, StageEntry
from vdp.errors import CatalogError

_STAGES: dict[str, StageEntry] = {}
_OUTPUTS: dict[str, OutputEntry] = {}
_builtin_loaded = False


def _ensure_builtin() -> None:
    global _builtin_loaded
    if not _builtin_loaded:
        _builtin_loaded = True
        from vdp.catalog import builtin

        for entry in builtin.STAGES:
            register_stage(entry)
        for entry in builtin.OUTPUTS:
            register_output(entry)


def register_stage(entry: StageEntry, *, replace: bool = False) -> StageEntry:
    """Add a stage (after every stage registered so far).

    Raises:
        CatalogError: A stage of that name exists already (and `replace` is false).
    """
    _ensure_builtin()
    if entry.name in _STAGES and not replace:
        raise CatalogError(f"a stage named {entry.name!r} is already in the catalog")
    _STAGES[entry.name] = entry
    return entry


def register_output(entry: OutputEntry, *, replace: bool = False) -> OutputEntry:
    """Add an output kind.

    Raises:
        CatalogError: An output kind of that name exists already (and `replace` is false).
    """
    _ensure_builtin()
    if entry.kind in _OUTPUTS and not replace:
        raise CatalogError(f"an output kind named {entry.kind!r} is already in the catalog")
    _OUTPUTS[entry.kind] = entry
    return entry


def unregister(name: str) -> None:
    """Remove the stage or output kind called `name` (tests that register their own)."""
    _STAGES.pop(name, None)
    _OUTPUTS.pop(name, None)


def stages() -> list[StageEntry]:
    """Every stage, in pipeline order."""
    _ensure_builtin()
    return list(_STAGES.values())


def outputs() -> list[OutputEntry]:
    """Every output kind, in registration order."""
    _ensure_builtin()
    return list(_OUTPUTS.values())


def stage(name: str) -> StageEntry:
    """The stage called `name`.

    Raises:
        CatalogError: No such stage (the message lists the known ones).
    """
    _ensure_builtin()
    try:
        return _STAGES[name]
    except KeyError:
        raise CatalogError(f"unknown stage {name!r}; available: {', '.join(_STAGES)}") from None


def output(kind: str) -> OutputEntry:
    """The output kind called `kind`.

    Raises:
        CatalogError: No such output kind (the message lists the known ones).
    """
    _ensure_builtin()
    try:
        return _OUTPUTS[kind]
    except KeyError:
        raise CatalogError(f"unknown output kind {kind!r}; available: {', '.join(_OUTPUTS)}") from None


def producers(layer: str) -> list[str]:
    """Names of the stages that produce `layer` from scratch (not by changing it)."""
    return [e.name for e in stages() if layer in e.produces and layer not in e.requires]


def chain_problems(stage_names: Iterable[str], output_kinds: Iterable[str]) -> list[str]:
    """What is wrong with a job's chain, one sentence per problem (empty when it is sound).

    Each stage's required layers must come from an earlier stage; each output's layers from
    some stage of the job.

    Args:
        stage_names: The job's stages, in pipeline order.
        output_kinds: The job's output kinds.
    """
    problems: list[str] = []
    have = set(SOURCE_LAYERS)
    for name in stage_names:
        entry = stage(name)
        for layer in entry.requires:
            if layer not in have:
                problems.append(f"stage {name} needs layer {layer!r}, which no earlier stage of "
                                f"this job produces{_hint(layer)}")
        have.update(entry.produces)
    for kind in dict.fromkeys(output_kinds):
        for layer in output(kind).needs:
            if layer not in have:
                problems.append(f"output {kind} needs layer {layer!r}, which no stage of this "
                                f"job produces{_hint(layer)}")
    return problems


def _hint(layer: str) -> str:
    names = producers(layer)
    return f" (enable {' or '.join('stages.' + n for n in names)})" if names else ""


def merge_policies(spec: Any) -> dict[str, MergePolicy]:
    """Layer -> merge policy of a job (`vdp.spec.JobSpec`): every enabled stage's rule, later
    stages overriding earlier ones; unlisted layers are ``keep``."""
    policies: dict[str, MergePolicy] = {}
    for name in spec.stages.enabled():
        policies.update(stage(name).merge_policies(spec))
    return policies
