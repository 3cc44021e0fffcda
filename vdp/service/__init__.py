"""The vdp gateway: FastAPI over a SQLite job store and a job manager that runs jobs on Ray.

The names below load on first use, so light parts (`vdp.service.server`'s options) import
without FastAPI, the engine or torch.
"""
from typing import Any

__all__ = ["Settings", "SettingsError", "create_app", "get_settings", "load_settings", "serve"]

_HOMES = {"create_app": "vdp.service.app", "serve": "vdp.service.server",
          "Settings": "vdp.service.settings", "SettingsError": "vdp.service.settings",
          "get_settings": "vdp.service.settings", "load_settings": "vdp.service.settings"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'vdp.service' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
