"""How the SDK downloads an output: into ``NAME.part``, resumed only when the gateway confirms
it is the same output (``If-Range`` with the saved ``ETag``), checked against the gateway's
SHA-256 (``Repr-Digest``), and never outside the target folder."""
from __future__ import annotations

import base64
import hashlib
import os
import re
import zipfile
from pathlib import Path, PurePosixPath

import httpx

from vdp.client.errors import (
    DownloadVerificationError, GatewayUnavailableError, UnsafeOutputNameError, error_from_response,
)

_CHUNK = 1 << 20
_DIGEST = re.compile(r"sha-256=:([A-Za-z0-9+/=]+):")


def check_output_name(name: str, out: Path, target: Path) -> None:
    """Refuse an output name (as the gateway sent it) that is not a plain name inside `out`.

    Raises:
        UnsafeOutputNameError: ``..``, a separator, a drive, a NUL, or a target outside `out`.
    """
    plain = (name not in ("", ".", "..") and "/" not in name and "\\" not in name
             and "\x00" not in name and ":" not in name)
    if not plain or os.path.dirname(os.path.abspath(target)) != os.path.abspath(out):
        raise UnsafeOutputNameError(f"the gateway named an output {name!r}, which would land outside "
                                    f"{out}; refusing to write it")


def fetch_verified(http: httpx.Client, url: str, target: Path, *, timeout_s: float, what: str) -> None:
    """`fetch`, then check the digest; a mismatch discards the file and fetches it afresh once.

    Raises:
        DownloadVerificationError: The bytes do not match the digest, also after a fresh download.
    """
    for _ in range(2):
        digest = fetch(http, url, target, timeout_s=timeout_s)
        if digest is None or sha256_of(target) == digest:
            return
        target.unlink()
    raise DownloadVerificationError(f"{what} does not match the gateway's SHA-256 digest, "
                                    "also after a fresh download")


def fetch(http: httpx.Client, url: str, target: Path, *, timeout_s: float) -> bytes | None:
    """Download `url` into `target` (via ``target.part``); returns the gateway's digest, if any.

    A ``.part`` is resumed only together with the ``ETag`` saved beside it, sent as
    ``If-Range``: the gateway answers with the whole file when the output has changed.
    """
    part = target.with_name(target.name + ".part")
    tag_file = target.with_name(target.name + ".part.etag")
    etag = tag_file.read_text().strip() if tag_file.is_file() else ""
    offset = part.stat().st_size if part.exists() and etag else 0
    headers = {"Range": f"bytes={offset}-", "If-Range": etag} if offset else {}
    try:
        with http.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout_s, read=120.0)) as r:
            if r.status_code == 416 and offset:
                # Nothing past our end: start over rather than trust the partial file blindly.
                part.unlink()
                tag_file.unlink(missing_ok=True)
                return fetch(http, url, target, timeout_s=timeout_s)
            if r.status_code >= 400:
                r.read()
                raise error_from_response(r)
            if r.status_code != 206:
                tag_file.write_text(r.headers.get("etag", ""))
            with part.open("ab" if r.status_code == 206 else "wb") as f:
                for chunk in r.iter_bytes(_CHUNK):
                    f.write(chunk)
            match = _DIGEST.search(r.headers.get("repr-digest", ""))
    except httpx.TransportError as exc:
        raise GatewayUnavailableError(
            f"download of {target.name!r} interrupted ({exc}); call download() again to resume") from None
    os.replace(part, target)
    tag_file.unlink(missing_ok=True)
    return base64.b64decode(match.group(1)) if match else None


def sha256_of(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.digest()


def safe_extract(archive: Path, dest: Path) -> None:
    """Unpack a ZIP archive, refusing members that would land outside `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            p = PurePosixPath(member)
            if p.is_absolute() or ".." in p.parts:
                raise ValueError(f"archive {archive.name} has an unsafe member {member!r}")
        zf.extractall(dest)
