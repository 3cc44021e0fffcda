"""Where the gateway may read and write: input roots, uploads, a job's own directory.

Every check resolves symbolic links before comparing, so a link inside a root that points
elsewhere is refused like the path it points to. Messages name the offending input as given
but never the server's own directories.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from vdp.service.errors import Forbidden, InvalidRequest, MalformedRequest, NotFound

UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 100


def resolve_input(raw: str, roots: list[Path]) -> Path:
    """The real path of a job input given as a path under one of the input roots.

    Args:
        raw: As submitted: relative to a root (tried in order) or absolute inside one.
        roots: Allowed directories (absolute).

    Returns:
        The resolved file path (symbolic links followed), inside a root.

    Raises:
        ServiceError: 400 for a malformed path (``..``, NUL); 403 for a path outside the roots
            or one whose links lead outside; 422 when nothing is there or it is not a file.
    """
    if "\x00" in raw:
        raise MalformedRequest.with_code("bad_path", "input path contains a NUL byte")
    parts = PurePosixPath(raw.replace("\\", "/")).parts
    if ".." in parts:
        raise MalformedRequest.with_code("bad_path", f"input path {raw!r} must not contain '..' components")
    if not roots:
        raise Forbidden.with_code("path_forbidden", "this gateway reads no paths (no input roots are "
                        "configured); upload the file with POST /v1/uploads instead")
    given = Path(raw)
    if given.is_absolute():
        candidates = [(root, given) for root in roots
                      if _inside(given, root) or _inside(given, root.resolve())]
        if not candidates:
            raise Forbidden.with_code("path_forbidden",
                            f"input path {raw!r} is outside the gateway's input roots")
    else:
        candidates = [(root, root / given) for root in roots]
    for root, path in candidates:
        try:
            if not (path.exists() or path.is_symlink()):
                continue
            real = path.resolve()
            is_file = real.is_file()
        except OSError as exc:
            raise InvalidRequest.with_code("input_unreadable", f"input {raw!r} cannot be accessed: "
                            f"{exc.strerror or type(exc).__name__}") from None
        if not _inside(real, root.resolve()):
            raise Forbidden.with_code("path_forbidden", f"input path {raw!r} leads outside the gateway's "
                            "input roots through a symbolic link")
        if not is_file:
            raise InvalidRequest.with_code("input_not_file", f"input {raw!r} is not a regular file")
        return real
    raise InvalidRequest.with_code("input_not_found", f"input {raw!r} not found under the gateway's input roots")


def resolve_upload(upload_id: str, uploads_dir: Path) -> Path:
    """The stored file of an upload id.

    Raises:
        InvalidRequest: for a malformed or unknown upload id.
    """
    if not UPLOAD_ID.match(upload_id):
        raise InvalidRequest.with_code("unknown_upload", f"{upload_id!r} is not an upload id (32 hex digits)")
    folder = uploads_dir / upload_id
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    files = [f for f in files if f.is_file() and not f.name.startswith(".")]
    if not files:
        raise InvalidRequest.with_code("unknown_upload", f"no upload with id {upload_id!r}")
    return files[0]


def output_path(job_dir: Path, name: str) -> Path:
    """A top-level entry of a job's directory, by name.

    Raises:
        ServiceError: 400 for a name with a path separator or a hidden name; 404 when missing;
            403 when it resolves outside the job's directory.
    """
    if "/" in name or "\\" in name:
        raise MalformedRequest.with_code("bad_name", f"output name {name!r} must be a plain name without '/' "
                        "(folders download whole, as ZIP)")
    if name in ("", ".", "..") or name.startswith(".") or "\x00" in name:
        raise MalformedRequest.with_code("bad_name", f"{name!r} is not a valid output name")
    path = job_dir / name
    try:
        present = path.exists() or path.is_symlink()
        real = path.resolve()
    except OSError:
        present = False
    if not present:
        raise NotFound.with_code("not_found", f"the job has no output named {name!r}")
    if not _inside(real, job_dir.resolve()):
        raise Forbidden.with_code("path_forbidden", f"output {name!r} leads outside the job's directory")
    return path


def sanitize_filename(name: str | None, default: str = "upload.bin") -> str:
    """A safe file name: the last path component, characters outside ``[A-Za-z0-9._-]`` as
    ``_``, no leading dots, at most 100 characters (the suffix kept)."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = _UNSAFE_CHARS.sub("_", base).lstrip(".")
    if not base:
        return default
    if len(base) > _MAX_NAME:
        stem, dot, suffix = base.rpartition(".")
        suffix = suffix[:16] if dot else ""
        base = (stem if dot else base)[: _MAX_NAME - len(suffix) - 1] + ("." + suffix if suffix else "")
    return base


def _inside(path: Path, root: Path) -> bool:
    """Lexical containment of normalised absolute paths."""
    import os

    p, r = os.path.normpath(path), os.path.normpath(root)
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)
