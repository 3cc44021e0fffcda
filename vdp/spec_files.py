"""Spec mappings from files: the named presets (package data) and JSON/YAML spec files.

These return plain mappings, not yet validated; `vdp.spec.JobSpec` validates them.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from vdp import catalog
from vdp.errors import SpecError

#: Where the named presets live (package data, so an installed wheel has them).
PRESETS = resources.files("vdp") / "presets"


def with_synthetic_weights(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of spec mapping `data` whose stages that load weights use synthetic ones."""
    stages = dict(data.get("stages") or {})
    for entry in catalog.stages():
        if stages.get(entry.name) is not None and "synthetic_weights" in entry.options.model_fields:
            stages[entry.name] = {**stages[entry.name], "synthetic_weights": True}
    return {**data, "stages": stages}


def list_presets() -> dict[str, str]:
    """Preset name -> one-line description, from the package's ``presets/*.yaml``."""
    out = {}
    for path in sorted(PRESETS.iterdir(), key=lambda p: p.name):
        if path.name.endswith(".yaml"):
            out[path.name.removesuffix(".yaml")] = str(_parse_mapping(path.read_text(), path.name).get("description", ""))
    return out


def load_preset(name: str) -> dict[str, Any]:
    """The preset's mapping (without its description)."""
    path = PRESETS / f"{name}.yaml"
    if "/" in name or not path.is_file():
        raise SpecError(f"unknown preset {name!r}; available: {', '.join(list_presets()) or 'none'}")
    data = _parse_mapping(path.read_text(), path.name)
    data.pop("description", None)
    return data


def read_spec_file(path: Path) -> dict[str, Any]:
    """The mapping in a JSON (``.json``) or YAML (anything else) spec file, not yet validated.

    Raises:
        SpecError: The file cannot be read, does not parse, or holds no mapping.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path}: {exc.strerror}") from None
    return _parse_mapping(text, str(path))


def _parse_mapping(text: str, source: str) -> dict[str, Any]:
    import yaml

    is_json = source.endswith(".json")
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"{source} is not valid {'JSON' if is_json else 'YAML'}: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{source} must hold a mapping of spec fields, got {type(data).__name__}")
    return data
