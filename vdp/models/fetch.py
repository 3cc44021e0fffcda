"""Downloading official checkpoints (with progress and checksums) and verifying local files.

`fetch` streams the registry URL into a temporary file beside the destination, checks the
registry's sha256 when it has one, records the observed digest in ``<file>.sha256`` and renames
the file into place atomically. `verify` checks that a file exists, matches its recorded (and
the registry's) digest, and that its state dict has the expected keys and shapes. Nothing here
touches the network unless `fetch` is called.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from vdp.errors import WeightsError
from vdp.models.state_dict import Layout, layout_of, layout_problems, manifest_layout, package_manifest, read_state_dict
from vdp.models.weights import CHECKPOINTS, Checkpoint, model_dir

ProgressCallback = Callable[[int, "int | None"], None]
"""``progress(bytes_done, bytes_total_or_None)``, called as the download advances."""

_CHUNK = 1 << 20


def sidecar_path(path: Path) -> Path:
    """Where the digest of `path` is recorded: ``<file>.sha256``."""
    return path.with_name(path.name + ".sha256")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_sidecar(path: Path) -> str | None:
    """The digest recorded for `path` (``sha256sum`` format), or None when there is none."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    text = side.read_text().split()
    return text[0].lower() if text else None


def _lookup(name: str, registry: Mapping[str, Checkpoint] | None) -> Checkpoint:
    reg = CHECKPOINTS if registry is None else registry
    try:
        return reg[name]
    except KeyError:
        raise WeightsError(f"unknown checkpoint {name!r}; known: {', '.join(reg)}") from None


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch(name: str, *, progress: ProgressCallback | None = None, timeout_s: float = 60.0,
          force: bool = False, dest_dir: str | Path | None = None,
          registry: Mapping[str, Checkpoint] | None = None) -> Path:
    """Download checkpoint `name` into the model directory.

    Args:
        name: Registry name.
        progress: Called with (bytes done, total bytes or None) as data arrives.
        timeout_s: Seconds to wait for the connection or for the next data before giving up.
        force: Download even when the file is already there.
        dest_dir: Target directory (default `model_dir()`).
        registry: Checkpoint registry (default `CHECKPOINTS`).

    Returns:
        The checkpoint's path.

    Raises:
        WeightsError: Unknown name, network failure, truncated download or sha256 mismatch
            (the partial file is removed in every case).
    """
    ckpt = _lookup(name, registry)
    folder = Path(dest_dir) if dest_dir is not None else model_dir()
    dest = folder / ckpt.filename
    if dest.is_file() and not force:
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{ckpt.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = _download_any(ckpt, fd, progress, timeout_s)
        if ckpt.sha256 and digest != ckpt.sha256.lower():
            raise WeightsError(f"sha256 mismatch for {name} from {ckpt.url}: expected {ckpt.sha256.lower()}, "
                               f"got {digest}; the download was discarded")
        sidecar_path(dest).unlink(missing_ok=True)
        os.replace(tmp, dest)
        _write_atomic(sidecar_path(dest), f"{digest}  {ckpt.filename}\n")
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _download_any(ckpt: Checkpoint, fd: int, progress: ProgressCallback | None, timeout_s: float) -> str:
    """Hub checkpoints through `huggingface_hub` (cache, resume, mirror, token; see
    `vdp.models.hub`) when it is installed, others by a plain download."""
    from vdp.models import hub

    loc = hub.hub_file(ckpt.url)
    if loc is None or not hub.hub_available():
        return _download(ckpt, fd, progress, timeout_s)
    cached = hub.download(loc, timeout_s=timeout_s, name=ckpt.name)
    size = cached.stat().st_size
    h = hashlib.sha256()
    done = 0
    if progress:
        progress(0, size)
    with open(cached, "rb") as src, os.fdopen(fd, "wb") as out:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, size)
    return h.hexdigest()


def _download(ckpt: Checkpoint, fd: int, progress: ProgressCallback | None, timeout_s: float) -> str:
    """Stream `ckpt.url` into the open file `fd`; return the hex sha256 of what arrived."""
    h = hashlib.sha256()
    done, total = 0, None
    with os.fdopen(fd, "wb") as out:
        try:
            req = urllib.request.Request(ckpt.url, headers={"User-Agent": "vdp-models-fetch"})
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if progress:
                    progress(0, total)
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except urllib.error.HTTPError as exc:
            raise WeightsError(f"download of {ckpt.name} from {ckpt.url} failed: "
                               f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise WeightsError(f"download of {ckpt.name} from {ckpt.url} failed: {reason}") from None
    if total is not None and done != total:
        raise WeightsError(f"download of {ckpt.name} from {ckpt.url} was cut short: "
                           f"{done} of {total} bytes")
    return h.hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a successful `verify`.

    Attributes:
        name: Registry name.
        path: The checked file.
        sha256: Its digest.
        recorded: Whether a sidecar digest was there (and matched).
        layout_checked: Whether keys and shapes were compared (a manifest or model layout exists).
        num_keys: Tensors in the state dict (0 when the layout was not checked).
    """

    name: str
    path: Path
    sha256: str
    recorded: bool
    layout_checked: bool
    num_keys: int


def expected_layout(ckpt: Checkpoint) -> Layout | None:
    """Keys and shapes a checkpoint must have: the shipped manifest, else (VDA) the model's."""
    manifest = package_manifest(ckpt)
    if manifest is not None:
        return manifest_layout(manifest)
    if ckpt.family == "vda":
        from vdp.models.video_depth_anything.loading import build_model

        return layout_of(build_model(ckpt.name).state_dict())
    return None


def verify(name: str, *, path: str | Path | None = None,
           registry: Mapping[str, Checkpoint] | None = None) -> VerifyResult:
    """Check a local checkpoint.

    Args:
        name: Registry name.
        path: File to check (default: the model directory's file for `name`).
        registry: Checkpoint registry (default `CHECKPOINTS`).

    Returns:
        What was checked.

    Raises:
        WeightsError: Missing file, digest different from its sidecar or the registry, or a
            state dict whose keys/shapes differ from the expected layout.
    """
    ckpt = _lookup(name, registry)
    file = Path(path) if path is not None else model_dir() / ckpt.filename
    if not file.is_file():
        raise WeightsError(f"checkpoint for {name!r} not found at {file}; "
                           f"get it with `vdp models fetch {name}`")
    digest = file_sha256(file)
    recorded = read_sidecar(file)
    if recorded is not None and recorded != digest:
        raise WeightsError(f"{file} has sha256 {digest} but {sidecar_path(file).name} records {recorded}: "
                           f"the file changed or is corrupted; fetch it again")
    if ckpt.sha256 and ckpt.sha256.lower() != digest:
        raise WeightsError(f"{file} has sha256 {digest}, the official {name} file has {ckpt.sha256.lower()}")
    expected = expected_layout(ckpt)
    num_keys = 0
    if expected is not None:
        found = layout_of(read_state_dict(file))
        problems = layout_problems(found, expected)
        if problems:
            raise WeightsError(f"{file} is not a {name} checkpoint: {problems}")
        num_keys = len(found)
    return VerifyResult(name, file, digest, recorded is not None, expected is not None, num_keys)
