"""Gateway settings from the environment (``VDP_*``), validated once and cached.

Tests build `Settings(...)` directly and pass it to `create_app`; `get_settings()` is the
process-wide default (clear it with ``get_settings.cache_clear()``).
"""
from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vdp.errors import VdpError


class SettingsError(VdpError):
    """The gateway's configuration is invalid or unsafe; the message names the setting."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "vdp"


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Gateway configuration.

    Attributes:
        host: Interface to listen on; anything but loopback requires `api_token`.
        port: TCP port.
        api_token: Bearer token clients must send (``VDP_API_TOKEN``); None disables auth.
        data_dir: Holds ``vdp.db``, ``jobs/<id>/`` and ``uploads/``.
        input_roots: Directories jobs may read inputs from (besides uploads); ``VDP_INPUT_ROOTS``
            is a list separated by ``os.pathsep`` or a JSON list.
        max_upload_bytes: Largest accepted upload.
        max_concurrent_uploads: Uploads receiving at once; more get 429.
        upload_read_timeout_s: Longest wait for the next piece of an upload's body (408 after).
        upload_ttl_s: Uploads no queued or running job reads are deleted after this long.
        max_concurrent_jobs: Jobs running at once; 0 accepts jobs but runs none (maintenance).
        ray_address: Ray cluster to join (``RAY_ADDRESS``); None starts a local instance.
        ready_presets: Presets whose weights `/readyz` requires (None: every preset; empty: none).
        sse_interval_s: How often the event stream looks for changes.
        sse_heartbeat_s: Idle time after which the event stream sends a keep-alive comment.
        shutdown_grace_s: How long shutdown waits for running jobs to stop at a batch boundary.
    """

    model_config = SettingsConfigDict(env_prefix="VDP_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_token: SecretStr | None = None
    data_dir: Path = Field(default_factory=_default_data_dir)
    input_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    max_upload_bytes: int = Field(2 * 1024**3, ge=1)
    max_concurrent_uploads: int = Field(8, ge=1, le=1024)
    upload_read_timeout_s: float = Field(30.0, gt=0, le=3600)
    upload_ttl_s: float = Field(7 * 24 * 3600.0, gt=0)
    max_concurrent_jobs: int = Field(1, ge=0, le=64)
    ray_address: str | None = Field(None, validation_alias=AliasChoices("RAY_ADDRESS", "ray_address"))
    ready_presets: Annotated[list[str] | None, NoDecode] = None
    sse_interval_s: float = Field(0.25, gt=0, le=10)
    sse_heartbeat_s: float = Field(15.0, gt=0, le=300)
    shutdown_grace_s: float = Field(20.0, ge=0)

    @field_validator("input_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                import json

                return json.loads(value)
            return [p for p in value.split(os.pathsep) if p]
        return value

    @field_validator("ready_presets", mode="before")
    @classmethod
    def _split_presets(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("input_roots")
    @classmethod
    def _roots_absolute(cls, roots: list[Path]) -> list[Path]:
        return [Path(os.path.abspath(r.expanduser())) for r in roots]

    @field_validator("api_token")
    @classmethod
    def _token_not_blank(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value().strip()) < 16:
            raise ValueError("VDP_API_TOKEN must be at least 16 characters (or unset on loopback)")
        return token

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> "Settings":
        if self.api_token is None and not is_loopback(self.host):
            raise ValueError(f"listening on {self.host} (beyond loopback) requires VDP_API_TOKEN")
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / "vdp.db"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment with `overrides` on top.

    Raises:
        SettingsError: A setting is invalid; the message names it.
    """
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors())
        raise SettingsError(f"invalid gateway settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return load_settings()
