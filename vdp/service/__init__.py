"""The vdp gateway: FastAPI over a SQLite job store and a job manager that runs jobs on Ray."""
from vdp.service.app import create_app
from vdp.service.server import serve
from vdp.service.settings import Settings, SettingsError, get_settings, load_settings

__all__ = ["Settings", "SettingsError", "create_app", "get_settings", "load_settings", "serve"]
