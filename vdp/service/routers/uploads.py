"""``/v1/uploads``: stream a video to the gateway (size-limited), then use it as a job input."""
from __future__ import annotations

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
from vdp.service.errors import MalformedRequest, TooLarge, UnsupportedMedia, conflict, not_found
from vdp.service.paths import UPLOAD_ID, sanitize_filename
from vdp.service.responses import API_PREFIX, errors
from vdp.service.store import UploadRecord

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
             summary="Upload a video", responses=errors(400, 401, 413, 415, 422))
async def upload_video(request: Request, settings: SettingsDep, store: StoreDep, metrics: MetricsDep,
                       filename: Annotated[str | None, Query(
                           max_length=255, description="Original file name (sanitised).")] = None,
                       ) -> UploadInfo:
    """Store the request body as a video; returns the id to use as ``input: upload:<id>``."""
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge.with_code("upload_too_large", f"upload of {declared} bytes exceeds the limit of {limit} bytes")
    upload_id = uuid.uuid4().hex
    folder = settings.uploads_dir / upload_id
    name = sanitize_filename(filename, default="upload.video")
    folder.mkdir(parents=True, exist_ok=False)
    try:
        size = await _receive(request, folder / f".{name}.part", limit)
        if size == 0:
            raise MalformedRequest.with_code("empty_upload", "the upload is empty: send the video's bytes as the request body")
        path = folder / name
        os.replace(folder / f".{name}.part", path)
        video = await run_in_threadpool(_probe, path)
        record = store.add_upload(upload_id, name, size, video)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    metrics.upload_bytes.inc(size)
    return _info(record)


async def _receive(request: Request, part: FsPath, limit: int) -> int:
    size = 0
    try:
        with part.open("wb") as f:
            async for chunk in request.stream():
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
        raise UnsupportedMedia.with_code("not_a_video", f"the upload is not a decodable video: {exc}") from None
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
