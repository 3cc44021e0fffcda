"""``/v1/jobs/{id}/outputs``: list and download a job's outputs (files with range requests,
folders as ZIP archives built once and cached in the job's directory).

Every download carries an ``ETag`` (ranges honour ``If-Range``) and a ``Repr-Digest`` (SHA-256
of the whole file) so a client can check what it resumed. ``spec.json`` and ``report.json`` are
served as the client's view (`vdp.service.public`): no server paths, hosts, pids or node ids.
"""
from __future__ import annotations

import base64
import errno
import hashlib
import json
import mimetypes
import os
import threading
import uuid
import zipfile
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Header, Path
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import MalformedRangeHeader
from starlette.responses import RangeNotSatisfiable as RangeOutsideFile

from vdp.api import TERMINAL_STATES, OutputFile, OutputList
from vdp.service.deps import ManagerDep, StoreDep
from vdp.service.errors import MalformedRequest, RangeNotSatisfiable, StorageFull, conflict, not_found
from vdp.service.paths import output_path
from vdp.service.public import public_json
from vdp.service.store import JobRecord
from vdp.service.responses import API_PREFIX, errors

router = APIRouter(prefix=API_PREFIX + "/jobs", tags=["outputs"])

ARCHIVE_DIR = ".archives"
#: Files of a job's folder that are served as the client's view, not as stored.
PUBLIC_VIEWS = ("spec.json", "report.json")
_MEDIA = {".npz": "application/octet-stream", ".npy": "application/octet-stream",
          ".json": "application/json", ".mp4": "video/mp4", ".webm": "video/webm",
          ".png": "image/png", ".zip": "application/zip"}
JobId = Annotated[str, Path(description="Job id (32 hex digits).")]
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def media_type(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    return _MEDIA.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


@router.get("/{job_id}/outputs", response_model=OutputList, summary="List a job's outputs",
            responses=errors(401, 404))
async def list_outputs(job_id: JobId, store: StoreDep, manager: ManagerDep) -> OutputList:
    """Files and folders in the job's directory (empty until the job has started)."""
    record = store.get_job(job_id)
    if record is None:
        raise not_found(f"no job with id {job_id!r}")
    entries = await run_in_threadpool(_scan, manager.job_dir(job_id), record)
    return OutputList(job_id=job_id, state=record.state, outputs=entries)


def public_view(job_dir: FsPath, name: str, record: JobRecord) -> bytes:
    """What a client gets for ``spec.json`` / ``report.json``: the stored JSON without server
    internals, its input shown as submitted."""
    try:
        data = json.loads((job_dir / name).read_text())
    except (OSError, ValueError):
        return b"{}"
    if isinstance(data, dict) and name == "spec.json":
        data["input"] = record.input
    view = public_json(data, job_dir=job_dir, input_label=record.input,
                       input_path=data.get("input") if name == "spec.json" else None)
    return json.dumps(view, indent=2).encode()


def _scan(job_dir: FsPath, record: JobRecord) -> list[OutputFile]:
    if not job_dir.is_dir():
        return []
    out = []
    for entry in sorted(job_dir.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir():
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file() and not f.is_symlink())
            out.append(OutputFile(name=entry.name, type="directory", size_bytes=size,
                                  media_type="application/zip"))
        elif entry.is_file():
            size = (len(public_view(job_dir, entry.name, record)) if entry.name in PUBLIC_VIEWS
                    else entry.stat().st_size)
            out.append(OutputFile(name=entry.name, type="file", size_bytes=size,
                                  media_type=media_type(entry.name)))
    return out


@router.get(
    "/{job_id}/outputs/{name:path}", response_class=FileResponse, summary="Download an output",
    responses={200: {"description": "The file, typed by its extension (a folder comes as a ZIP "
                                    "archive; spec.json and report.json as JSON).",
                     "content": {"application/json": {"schema": {"type": "object"}}, "*/*": _BINARY}},
               206: {"description": "The requested byte range(s).", "content": {"*/*": _BINARY}},
               **errors(400, 401, 403, 404, 409, 416)})
async def download_output(job_id: JobId, store: StoreDep, manager: ManagerDep,
                          name: Annotated[str, Path(description="Output name from the output list "
                                                                "(no '/').")],
                          range: Annotated[str | None, Header(
                              description="Byte range(s), e.g. `bytes=1000-` to resume.")] = None,
                          if_range: Annotated[str | None, Header(
                              description="Serve `Range` only if the output still has this ETag.")] = None,
                          ) -> Response:
    """Download one output; supports ``Range`` (and ``If-Range``) to resume; ``Repr-Digest``
    carries the SHA-256 of the whole output."""
    record = store.get_job(job_id)
    if record is None:
        raise not_found(f"no job with id {job_id!r}")
    job_dir = manager.job_dir(job_id)
    path = output_path(job_dir, name)
    if record.state not in TERMINAL_STATES:
        raise conflict(f"job {job_id} is {record.state}; outputs can be downloaded once it has finished")
    filename = name
    if name in PUBLIC_VIEWS and path.is_file():
        return await _view_response(job_dir, name, record, range, if_range)
    if path.is_dir():
        path = await run_in_threadpool(_archive, job_dir, path)
        filename = f"{name}.zip"
    if range is not None:
        _check_range(range, path.stat().st_size)
    digest = await run_in_threadpool(file_digest, path)
    return FileResponse(path, media_type=media_type(filename), filename=filename,
                        headers={"Repr-Digest": _digest_header(digest)})


async def _view_response(job_dir: FsPath, name: str, record: JobRecord, range: str | None,
                         if_range: str | None) -> Response:
    """A public view as a response, with the same ETag, If-Range and Range rules as a file."""
    body = await run_in_threadpool(public_view, job_dir, name, record)
    digest = hashlib.sha256(body).digest()
    etag = f'"{digest.hex()[:32]}"'
    headers = {"ETag": etag, "Repr-Digest": _digest_header(digest), "Accept-Ranges": "bytes",
               "Content-Disposition": f'attachment; filename="{name}"'}
    if range is not None and (if_range is None or if_range == etag):
        _check_range(range, len(body))
        spans = FileResponse._parse_range_header(range, len(body))
        if len(spans) == 1:
            start, end = spans[0]
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(body)}"
            return Response(body[start:end], status_code=206, media_type="application/json",
                            headers=headers)
    return Response(body, media_type="application/json", headers=headers)


_digests: dict[tuple[str, int, int], bytes] = {}
_digests_guard = threading.Lock()


def file_digest(path: FsPath) -> bytes:
    """SHA-256 of a file, cached by (path, size, mtime) so a resumed download does not re-read it."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _digests_guard:
        if key in _digests:
            return _digests[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    with _digests_guard:
        if len(_digests) > 4096:
            _digests.clear()
        _digests[key] = h.digest()
    return _digests[key]


def _digest_header(digest: bytes) -> str:
    return f"sha-256=:{base64.b64encode(digest).decode()}:"


def _check_range(header: str, size: int) -> None:
    """Answer a bad ``Range`` with this API's error body rather than plain text."""
    try:
        FileResponse._parse_range_header(header, size)
    except MalformedRangeHeader as exc:
        raise MalformedRequest.with_code("bad_range", f"invalid Range header {header!r}: {exc.content}") from None
    except RangeOutsideFile:
        raise RangeNotSatisfiable.with_code("range_not_satisfiable", f"range {header!r} is outside the file "
                        f"({size} bytes)", headers={"Content-Range": f"bytes */{size}"}) from None


def _archive(job_dir: FsPath, folder: FsPath) -> FsPath:
    """A stored (uncompressed) ZIP of `folder`, built once; concurrent builders race harmlessly."""
    cache = job_dir / ARCHIVE_DIR
    target = cache / f"{folder.name}.zip"
    if target.is_file():
        return target
    tmp = cache / f".{folder.name}.{uuid.uuid4().hex}.tmp"
    try:
        cache.mkdir(exist_ok=True)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for f in sorted(folder.rglob("*")):
                if f.is_file() and not f.is_symlink():
                    zf.write(f, f.relative_to(folder).as_posix())
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(f"the gateway's disk is full: it cannot build the archive of "
                              f"{folder.name!r}; try again once space is freed") from None
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return target
