"""``/v1/uploads``: stream a video to the gateway (size-limited), then use it as a job input."""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from vdp.api import UPLOAD_PREFIX, UploadInfo, VideoSummary
from vdp.errors import VdpError
from vdp.service.deps import MetricsDep, SettingsDep, StoreDep
from vdp.service.errors import (
    MalformedRequest, RequestTimedOut, StorageFull, TooLarge, TooManyRequests, UnsupportedMedia,
    conflict, not_found,
)
from vdp.service.paths import UPLOAD_ID, sanitize_filename
from vdp.service.public import public_text
from vdp.service.responses import API_PREFIX, errors
from vdp.service.settings import Settings
from vdp.service.store import JobStore, UploadRecord

router = APIRouter(prefix=API_PREFIX + "/uploads", tags=["uploads"])
log = logging.getLogger("vdp.service")

_BODY = {
    "requestBody": {
        "required": True,
        "description": "The raw bytes of a video file (not multipart).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("", status_code=201, response_model=UploadInfo, openapi_extra=_BODY,
             summary="Upload a video", responses=errors(400, 401, 408, 413, 415, 422, 429, 507))
async def upload_video(request: Request, settings: SettingsDep, store: StoreDep, metrics: MetricsDep,
                       filename: Annotated[str | None, Query(
                           max_length=255, description="Original file name (sanitised).")] = None,
                       ) -> UploadInfo:
    """Store the request body as a video; returns the id to use as ``input: upload:<id>``."""
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge.with_code("upload_too_large", f"upload of {declared} bytes exceeds the limit of {limit} bytes")
    slots = request.app.state.uploads
    if not slots.take():
        raise TooManyRequests(f"{slots.limit} uploads are in progress, the most this gateway takes "
                              "at once; try again when one has finished", headers={"Retry-After": "5"})
    try:
        record = await _store_upload(request, settings, store, filename, limit)
    finally:
        slots.give_back()
    metrics.upload_bytes.inc(record.size_bytes)
    return _info(record)


async def _store_upload(request: Request, settings: Settings, store: JobStore,
                        filename: str | None, limit: int) -> UploadRecord:
    """Receive, probe and record one upload; nothing of it stays when any step fails."""
    upload_id = uuid.uuid4().hex
    folder = settings.uploads_dir / upload_id
    name = sanitize_filename(filename, default="upload.video")
    try:
        folder.mkdir(parents=True, exist_ok=False)
        size = await _receive(request, folder / f".{name}.part", limit, settings.upload_read_timeout_s)
        if size == 0:
            raise MalformedRequest.with_code("empty_upload", "the upload is empty: send the video's bytes as the request body")
        path = folder / name
        os.replace(folder / f".{name}.part", path)
        video = await run_in_threadpool(_probe, path)
        return store.add_upload(upload_id, name, size, video)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull("the gateway's disk is full: the upload was not stored (nothing of it "
                              "was kept); try again once space is freed") from None
        raise
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


async def _receive(request: Request, part: FsPath, limit: int, read_timeout_s: float) -> int:
    """Write the body to `part` as it arrives: 413 past `limit`, 408 when it stalls."""
    size = 0
    chunks = request.stream().__aiter__()
    try:
        with part.open("wb") as f:
            while True:
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), read_timeout_s)
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    raise RequestTimedOut(f"no upload data for {read_timeout_s:g} s; the upload was "
                                          "abandoned", headers={"Connection": "close"}) from None
                size += len(chunk)
                if size > limit:
                    raise TooLarge.with_code("upload_too_large", f"upload exceeds the limit of {limit} bytes")
                f.write(chunk)
    except ClientDisconnect:
        raise MalformedRequest.with_code("upload_interrupted", "the client disconnected during the upload") from None
    return size


def _probe(path: FsPath) -> dict[str, Any]:
    from vdp.io import probe

    try:
        info = probe(str(path))
    except VdpError as exc:
        log.info("probe of upload %s: %s", path, exc)
        detail = public_text(str(exc), input_path=str(path), input_label=path.name)
        raise UnsupportedMedia.with_code("not_a_video", f"the upload is not a decodable video: {detail}") from None
    except Exception as exc:  # a decoder failure we did not foresee is still the file's fault
        log.warning("probe of upload %s raised %s: %s", path.name, type(exc).__name__, exc)
        raise UnsupportedMedia.with_code("not_a_video", "the upload is not a decodable video") from None
    return {k: getattr(info, k) for k in VideoSummary.model_fields}


def _info(record: UploadRecord) -> UploadInfo:
    return UploadInfo(id=record.id, input=f"{UPLOAD_PREFIX}{record.id}", filename=record.filename,
                      size_bytes=record.size_bytes,
                      created_at=datetime.fromtimestamp(record.created_at, tz=timezone.utc),
                      video=VideoSummary(**record.video))


@router.get("/{upload_id}", response_model=UploadInfo, summary="Upload details",
            responses=errors(401, 404))
async def get_upload(upload_id: Annotated[str, Path(description="Upload id.")],
                     store: StoreDep) -> UploadInfo:
    record = store.get_upload(upload_id) if UPLOAD_ID.match(upload_id) else None
    if record is None:
        raise not_found(f"no upload with id {upload_id!r}")
    return _info(record)


@router.delete("/{upload_id}", status_code=204, response_class=Response, summary="Delete an upload",
               responses=errors(401, 404, 409))
async def delete_upload(upload_id: Annotated[str, Path(description="Upload id.")],
                        store: StoreDep, settings: SettingsDep) -> Response:
    """Remove an upload no queued or running job reads."""
    if not UPLOAD_ID.match(upload_id) or store.get_upload(upload_id) is None:
        raise not_found(f"no upload with id {upload_id!r}")
    users = store.active_jobs_with_input(f"{UPLOAD_PREFIX}{upload_id}")
    if users:
        raise conflict(f"upload {upload_id} is the input of unfinished jobs: {', '.join(users)}")
    store.delete_upload(upload_id)
    shutil.rmtree(settings.uploads_dir / upload_id, ignore_errors=True)
    return Response(status_code=204)
