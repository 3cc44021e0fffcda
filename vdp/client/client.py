"""Python SDK of the vdp gateway: submit jobs, follow their progress, download their outputs.

Needs httpx and pydantic only (no torch, no Ray), so remote users can install it anywhere::

    from vdp.client import Client

    with Client("http://gpu-box:8000", token="...") as client:
        job = client.submit(Path("clip.mp4"), preset="depth")   # a local file: uploaded first
        for status in job.events():
            print(status.state, [(p.stage, p.frames_done) for p in status.progress])
        job.download("out/")
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import httpx

from vdp.client.download import check_output_name, fetch_verified, safe_extract
from vdp.client.errors import (
    GatewayUnavailableError, JobCancelledError, JobFailedError, JobTimeoutError, error_from_response,
)
from vdp.api import (
    Health, JobList, JobStatus, JobSummary, OutputFile, OutputList, Readiness,
    UploadInfo,
)
from vdp.client.sse import parse_events
from vdp.spec import JobSpec

_CHUNK = 1 << 20


class Client:
    """Connection to one vdp gateway.

    Args:
        url: Gateway base address, e.g. ``http://127.0.0.1:8000``.
        token: Bearer token (the gateway's ``VDP_API_TOKEN``), if it requires one.
        timeout_s: Timeout of ordinary requests (uploads and downloads stream without one).
        transport: httpx transport to use instead of the network (tests, custom TLS).
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", *, token: str | None = None,
                 timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout_s = timeout_s
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s,
                                  transport=transport)

    # -- plumbing -----------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; raise the typed `ApiError` for an error status.

        Raises:
            GatewayUnavailableError: The gateway cannot be reached.
            ApiError: A subclass matching the error status.
        """
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise GatewayUnavailableError(f"cannot reach the gateway at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    # -- gateway ------------------------------------------------------------------------------

    def health(self) -> Health:
        """Liveness of the gateway process."""
        return Health.model_validate(self.request("GET", "/healthz").json())

    def ready(self) -> Readiness:
        """Readiness (Ray connected, weights present); never raises for a not-ready gateway."""
        try:
            response = self._http.get("/readyz")
        except httpx.TransportError as exc:
            raise GatewayUnavailableError(f"cannot reach the gateway at {self.url}: {exc}") from None
        if response.status_code not in (200, 503):
            raise error_from_response(response)
        return Readiness.model_validate(response.json())

    # -- uploads ------------------------------------------------------------------------------

    def upload(self, path: str | os.PathLike[str], *, filename: str | None = None) -> UploadInfo:
        """Stream a local video file to the gateway.

        Args:
            path: Local file.
            filename: Name to store it under (default: the file's name; the gateway sanitises it).

        Returns:
            The upload; pass ``info.input`` (``upload:<id>``) as a job's input.

        Raises:
            FileNotFoundError: `path` is not a file.
            PayloadTooLargeError: The file exceeds the gateway's upload limit.
            UnsupportedMediaError: The gateway cannot decode it as a video.
        """
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"upload source {p} is not a file")
        size = p.stat().st_size
        with p.open("rb") as f:
            response = self.request(
                "POST", "/v1/uploads", params={"filename": filename or p.name},
                content=_read_chunks(f),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                timeout=httpx.Timeout(self.timeout_s, write=None, read=max(self.timeout_s, 120.0)),
            )
        return UploadInfo.model_validate(response.json())

    # -- jobs ---------------------------------------------------------------------------------

    def submit(self, input_or_path: str | os.PathLike[str] | None = None, *,
               preset: str | None = None, spec: JobSpec | Mapping[str, Any] | None = None,
               overrides: Mapping[str, Any] | None = None, upload: bool | None = None) -> "Job":
        """Submit a job.

        Args:
            input_or_path: A ``pathlib.Path`` (or any path object) is a local file, uploaded first;
                a ``str`` is an input on the gateway's side: a path under one of its input roots,
                or ``upload:<id>``. Default: the spec's own ``input``.
            preset: Name of a gateway preset (see ``vdp presets``); exclusive with `spec`.
            spec: A full job spec (its ``input`` is replaced by `input_or_path` when given).
            overrides: Top-level spec fields laid over the preset or spec (e.g. ``max_frames``).
            upload: Force (True) or forbid (False) uploading `input_or_path`.

        Returns:
            The queued job.

        Raises:
            ValueError: Neither or both of `preset` and `spec`, or no input at all.
            InvalidRequestError: The gateway rejected the spec (the message names the fields).
            PermissionDeniedError: The input is outside the gateway's input roots.
        """
        if (preset is None) == (spec is None):
            raise ValueError("give exactly one of preset= or spec=")
        body: dict[str, Any] = {}
        if spec is not None:
            body = json.loads(spec.to_json()) if isinstance(spec, JobSpec) else dict(spec)
        body.update(overrides or {})
        if input_or_path is not None:
            should_upload = upload if upload is not None else not isinstance(input_or_path, str)
            if should_upload:
                body["input"] = self.upload(input_or_path).input
            else:
                body["input"] = os.fspath(input_or_path)
        if not body.get("input"):
            raise ValueError("no input: pass input_or_path or a spec with an input")
        params = {"preset": preset} if preset else {}
        response = self.request("POST", "/v1/jobs", params=params, json=body)
        status = JobStatus.model_validate(response.json())
        return Job(self, status.id, status)

    def job(self, job_id: str) -> "Job":
        """A handle on an existing job (checks that it exists)."""
        job = Job(self, job_id)
        job.status()
        return job

    def jobs(self, *, state: str | None = None, page_size: int = 100) -> Iterator[JobSummary]:
        """Every job, newest first, fetched page by page.

        Args:
            state: Only jobs in this state (``queued``, ``running``, ``succeeded`` ...).
            page_size: Jobs per request.
        """
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if state:
                params["state"] = state
            if cursor:
                params["cursor"] = cursor
            page = JobList.model_validate(self.request("GET", "/v1/jobs", params=params).json())
            yield from page.jobs
            if not page.next_cursor:
                return
            cursor = page.next_cursor


class Job:
    """A job on the gateway.

    Attributes:
        id: Job id.
        last_status: The most recent status this handle has seen (None before the first).
    """

    def __init__(self, client: Client, job_id: str, status: JobStatus | None = None) -> None:
        self.client = client
        self.id = job_id
        self.last_status = status

    def __repr__(self) -> str:
        state = self.last_status.state if self.last_status else "?"
        return f"Job({self.id!r}, state={state!r})"

    def status(self) -> JobStatus:
        """Current state, per-stage progress and error text."""
        self.last_status = JobStatus.model_validate(self.client.request("GET", f"/v1/jobs/{self.id}").json())
        return self.last_status

    def cancel(self) -> JobStatus:
        """Ask the gateway to stop the job (a queued job is cancelled at once).

        Raises:
            ConflictError: The job already finished, or a cancel was already requested.
        """
        self.last_status = JobStatus.model_validate(
            self.client.request("POST", f"/v1/jobs/{self.id}/cancel").json())
        return self.last_status

    def delete(self) -> None:
        """Remove a finished job and its outputs from the gateway."""
        self.client.request("DELETE", f"/v1/jobs/{self.id}")

    def events(self, *, timeout_s: float | None = None, reconnect_s: float = 30.0) -> Iterator[JobStatus]:
        """Statuses pushed by the gateway (server-sent events) until the job finishes.

        Every status yielded has a higher ``version`` than the one before; the last one is in a
        final state. A dropped connection (e.g. a gateway restart) is re-opened for up to
        `reconnect_s` seconds.

        Args:
            timeout_s: Stop with `JobTimeoutError` when the job is not done after this long.
            reconnect_s: How long to keep trying to reconnect after the stream drops.

        Raises:
            JobTimeoutError: `timeout_s` passed.
            GatewayUnavailableError: The gateway stayed unreachable for `reconnect_s`.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last_version = -1
        down_since: float | None = None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise self._timeout(timeout_s)
            read_s = 60.0 if remaining is None else min(60.0, max(remaining, 0.05))
            try:
                with self.client._http.stream(
                        "GET", f"/v1/jobs/{self.id}/events",
                        timeout=httpx.Timeout(self.client.timeout_s, read=read_s)) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise error_from_response(response)
                    down_since = None
                    for event in parse_events(response.iter_lines()):
                        if deadline is not None and time.monotonic() > deadline:
                            raise self._timeout(timeout_s)
                        if event is None or event.event != "status":
                            continue
                        status = JobStatus.model_validate_json(event.data)
                        if status.version <= last_version:
                            continue
                        last_version = status.version
                        self.last_status = status
                        yield status
                        if status.done:
                            return
            except (httpx.TransportError, httpx.StreamError) as exc:
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > reconnect_s:
                    raise GatewayUnavailableError(
                        f"lost the event stream of job {self.id} and could not reconnect "
                        f"within {reconnect_s:.0f} s: {exc}") from None
                time.sleep(0.5)

    def wait(self, timeout_s: float | None = None, *, raise_on_failure: bool = True) -> JobStatus:
        """Block until the job finishes.

        Args:
            timeout_s: Longest to wait (None: forever).
            raise_on_failure: Raise for a failed or cancelled job instead of returning its status.

        Returns:
            The final status.

        Raises:
            JobTimeoutError: Not finished within `timeout_s`.
            JobFailedError: The job failed (when `raise_on_failure`).
            JobCancelledError: The job was cancelled (when `raise_on_failure`).
        """
        status = self.last_status
        for status in self.events(timeout_s=timeout_s):
            pass
        if status is None:
            status = self.status()
        if raise_on_failure and status.state == "failed":
            raise JobFailedError(status)
        if raise_on_failure and status.state == "cancelled":
            raise JobCancelledError(f"job {self.id} was cancelled")
        return status

    def outputs(self) -> list[OutputFile]:
        """The job's output files and folders (with spec.json and report.json)."""
        return OutputList.model_validate(
            self.client.request("GET", f"/v1/jobs/{self.id}/outputs").json()).outputs

    def download(self, directory: str | os.PathLike[str], *, names: list[str] | None = None,
                 extract: bool = True) -> list[Path]:
        """Download outputs into `directory`, resuming partial downloads with range requests.

        A partial file is resumed only when the gateway confirms (``If-Range``) that the output
        is the one it came from; every file is checked against the gateway's SHA-256 digest.

        Args:
            directory: Local folder (created).
            names: Outputs to fetch (default: all).
            extract: Unpack folder outputs (served as ZIP) into folders of the same name.

        Returns:
            Local paths of the downloaded files and folders.

        Raises:
            UnsafeOutputNameError: The gateway named an output that would land outside `directory`.
            DownloadVerificationError: A file does not match its digest, even after a fresh download.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        available = {o.name: o for o in self.outputs()}
        wanted = names if names is not None else list(available)
        paths = []
        for name in wanted:
            if name not in available:
                raise FileNotFoundError(f"job {self.id} has no output {name!r}; it has: {sorted(available)}")
            entry = available[name]
            target = out / (f"{name}.zip" if entry.type == "directory" else name)
            check_output_name(name, out, target)
            fetch_verified(self.client._http, f"/v1/jobs/{self.id}/outputs/{name}", target,
                           timeout_s=self.client.timeout_s, what=f"output {name!r} of job {self.id}")
            if entry.type == "directory" and extract:
                safe_extract(target, out / name)
                target.unlink()
                target = out / name
            paths.append(target)
        return paths

    # -- internals ----------------------------------------------------------------------------

    def _timeout(self, timeout_s: float | None) -> JobTimeoutError:
        state = self.last_status.state if self.last_status else "unknown"
        return JobTimeoutError(f"job {self.id} not finished after {timeout_s} s (state: {state})")


def _read_chunks(f) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        yield chunk
