"""A hostile client against a real gateway (uvicorn + SQLite + Ray) over loopback: preset paths,
deep JSON, endless bodies, reserved output names, out-of-range and mistyped numbers, and what
job errors, spec.json and report.json reveal of the server (issue 18, items 1-6)."""
from __future__ import annotations

import json
import platform
import select
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import MEDIA
from tests.service.gateway import BEAR, TOKEN, depth_spec
from tests.service.test_bad_requests import check
from vdp.spec import RESERVED_OUTPUT_NAMES, JobSpec


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# -- 1. preset names are names -----------------------------------------------------------------


def test_preset_paths_are_refused_without_reading_or_echoing_files(http, tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("stages: {depth: {model: SECRET_VALUE_42}}\ndescription: x\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("stages: [unclosed\n")
    configs = Path(__file__).resolve().parents[2] / "configs"
    hostile = [str(secret.with_suffix("")), str(broken.with_suffix("")), "../../x",
               f"../../../..{secret.with_suffix('')}", "depth/../depth", "/etc/passwd", "depth.yaml",
               str(configs / "depth"), "dep th", "a" * 65, "..", "~root", "%2e%2e"]
    for name in hostile:
        r = http.post("/v1/jobs", params={"preset": name}, json={"input": BEAR})
        assert r.status_code == 422, (name, r.text)
        assert "SECRET_VALUE_42" not in r.text and str(tmp_path) not in r.text, r.text
        assert "unclosed" not in r.text and str(configs) not in r.text, r.text
    # A plain name that is not a preset: the message lists the presets the spec knows.
    body = check(http.post("/v1/jobs", params={"preset": "nope"}, json={"input": BEAR}),
                 422, "unknown_preset", "unknown preset 'nope'")
    assert "depth" in body["detail"]


# -- 2. nesting limit ----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[" * 1000 + b"]" * 1000, b"[" * 200_000 + b"]" * 200_000,
                                  b'{"input": "x", "stages": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001])
def test_deeply_nested_json_is_422_and_the_connection_lives(http, body):
    r = http.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
    check(r, 422, "too_deep", "levels deep")
    assert http.get("/v1/jobs", params={"limit": 1}).status_code == 200


def test_nan_and_infinity_are_not_numbers(http):
    r = http.post("/v1/jobs", content=b'{"input": "x", "max_frames": NaN}',
                  headers={"Content-Type": "application/json"})
    check(r, 400, "invalid_json", "NaN is not a JSON number")


# -- 3. bodies streamed with the size limit enforced while reading --------------------------------


def _raw_request(gateway, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
    sock.sendall((head + f"Host: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                  "Content-Type: application/json\r\n\r\n").encode())
    return sock


def _read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_declared_oversize_body_is_refused_before_it_is_sent(gateway):
    sock = _raw_request(gateway, "POST /v1/jobs HTTP/1.1\r\nContent-Length: 300000000\r\n")
    with sock:
        assert _read_status(sock) == 413


def test_endless_chunked_body_gets_413_while_streaming_and_memory_stays_flat(gateway):
    before = rss_kb(gateway.proc.pid)
    sock = _raw_request(gateway, "POST /v1/jobs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n")
    piece = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    sent, status = 0, None
    with sock:
        while sent < 300 * 2**20:  # never finished: a server that waits for the end never answers
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                status = _read_status(sock)
                break
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 65536
        if status is None:
            status = _read_status(sock)
    assert status == 413
    assert sent < 64 * 2**20, f"the gateway read {sent} bytes before refusing"
    assert rss_kb(gateway.proc.pid) - before < 50_000


# -- 4. output names against every reserved name of a job folder ---------------------------------


def test_reserved_names_cover_what_the_engine_and_gateway_keep_in_a_job_folder():
    from vdp.engine.ledger import WORKDIR
    from vdp.service.routers.outputs import ARCHIVE_DIR, PUBLIC_VIEWS

    assert {WORKDIR, ARCHIVE_DIR, *PUBLIC_VIEWS} <= RESERVED_OUTPUT_NAMES


@pytest.mark.parametrize("name", sorted(RESERVED_OUTPUT_NAMES | {"Report.JSON", "SPEC.json"}))
def test_outputs_cannot_take_a_reserved_name(http, name):
    spec = depth_spec(BEAR, outputs=[{"kind": "depth_npz", "name": name}])
    body = check(http.post("/v1/jobs", json=spec), 422, "invalid_spec", "outputs.0.name")
    assert "reserved" in body["detail"] or "pattern" in body["detail"]


# -- 5. every number bounded, strict types --------------------------------------------------------


def _numeric_fields(schema: dict) -> list[tuple[str, dict]]:
    """(dotted path, property schema) of every number and integer field of the JobSpec schema."""
    defs = schema.get("$defs", {})
    found = []

    def walk(node: dict, path: str) -> None:
        for key, prop in node.get("properties", {}).items():
            options = prop.get("anyOf", [prop])
            for option in options:
                if "$ref" in option:
                    walk(defs[option["$ref"].rsplit("/", 1)[-1]], f"{path}{key}.")
                elif option.get("type") == "array" and "$ref" in option.get("items", {}):
                    walk(defs[option["items"]["$ref"].rsplit("/", 1)[-1]], f"{path}{key}.0.")
                elif option.get("type") in ("integer", "number"):
                    found.append((f"{path}{key}", option))
    walk(schema, "")
    return found


def full_spec() -> dict:
    return {"input": BEAR,
            "stages": {"depth": {}, "refine": {}, "matte": {"downsample_ratio": 0.5}, "stereo": {}},
            "outputs": [{"kind": "depth_npz"}],
            "chunking": {"enabled": True},
            "resources": {"threads": 1, "object_store_budget_mb": 100.0}}


def test_every_numeric_field_has_an_upper_bound_named_in_the_error(http):
    fields = _numeric_fields(JobSpec.model_json_schema())
    assert len(fields) >= 19 and "outputs.0.crf" in dict(fields)
    for path, prop in fields:
        assert "maximum" in prop or "exclusiveMaximum" in prop, f"{path} has no upper bound"
        bound = prop.get("maximum", prop.get("exclusiveMaximum"))
        spec = full_spec()
        node = spec
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        node[leaf] = 10**30 if prop["type"] == "integer" else 1e30
        body = check(http.post("/v1/jobs", json=spec), 422, "invalid_spec", path)
        assert "less than" in body["detail"], body
        written = {f"{bound:g}", str(bound)} | ({str(int(bound))} if float(bound).is_integer() else set())
        assert any(w in body["detail"] for w in written), (path, bound, body)


@pytest.mark.parametrize("field,value", [("max_frames", "8"), ("max_frames", True), ("max_frames", 8.0),
                                         ("scene_cuts", "yes"), ("scene_cuts", 1)])
def test_numbers_and_flags_are_strictly_typed(http, field, value):
    check(http.post("/v1/jobs", json=depth_spec(BEAR, **{field: value})), 422, "invalid_spec", field)


def test_strict_types_inside_stages_and_maps(http):
    spec = depth_spec(BEAR)
    spec["resources"]["batch_frames"] = "8"
    spec["resources"]["replicas"] = {"depth": True}
    spec["stages"]["depth"]["synthetic_weights"] = "true"
    body = check(http.post("/v1/jobs", json=spec), 422, "invalid_spec", "resources.batch_frames")
    assert "resources.replicas.depth" in body["detail"] and "synthetic_weights" in body["detail"]


# -- 6. what a client sees of the server ----------------------------------------------------------


@pytest.fixture(scope="module")
def uploaded_job(gateway):
    from vdp.client import Client

    with Client(gateway.url, token=TOKEN) as c:
        info = c.upload(MEDIA / BEAR)
        job = c.submit(info.input, spec=depth_spec(info.input, max_frames=4))
        assert job.wait(180).state == "succeeded"
        return job.id, info.input


def leaks(text: str, gateway) -> list[str]:
    """Server internals found in `text`."""
    found = [s for s in (str(gateway.data_dir), str(gateway.data_dir.resolve()), platform.node(),
                         "node_id", '"pid"', "127.0.0.1") if s and s in text]
    return found + [m for m in ("\x1b[",) if m in text]


def test_spec_and_report_downloads_show_job_relative_names_only(http, gateway, uploaded_job, roots):
    job_id, upload_input = uploaded_job
    spec = http.get(f"/v1/jobs/{job_id}/outputs/spec.json")
    report = http.get(f"/v1/jobs/{job_id}/outputs/report.json")
    for r in (spec, report):
        assert r.status_code == 200 and not leaks(r.text, gateway), leaks(r.text, gateway)
        assert str(roots["root"]) not in r.text
    assert spec.json()["input"] == upload_input
    assert json.loads(report.text)["status"] == "succeeded"
    listing = {o["name"]: o for o in http.get(f"/v1/jobs/{job_id}/outputs").json()["outputs"]}
    assert listing["report.json"]["size_bytes"] == len(report.content)
    status = http.get(f"/v1/jobs/{job_id}").text
    assert not leaks(status, gateway)
    # The operator's copy in the job folder keeps the full detail.
    stored = (gateway.data_dir / "jobs" / job_id / "report.json").read_text()
    assert platform.node() in stored


def test_failed_job_error_and_415_name_no_server_paths(http, gateway, roots):
    r = http.post("/v1/jobs", json=depth_spec("not_a_video.txt"))
    assert r.status_code == 201
    job_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while (status := http.get(f"/v1/jobs/{job_id}").json())["state"] not in ("failed", "succeeded"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert status["state"] == "failed"
    assert "not_a_video.txt" in status["error"]
    assert str(roots["root"]) not in status["error"] and not leaks(status["error"], gateway)
    r = http.post("/v1/uploads", params={"filename": "fake.mp4"}, content=b"\x00garbage" * 500)
    assert r.status_code == 415 and str(gateway.data_dir) not in r.text and "/uploads/" not in r.text


def test_public_text_removes_colour_codes_addresses_pids_and_paths(tmp_path):
    from vdp.service.public import public_text

    job_dir = tmp_path / "jobs" / ("a" * 32)
    raw = (f"\x1b[36m(DepthActor pid=48213, ip=10.1.2.3)\x1b[0m RayActorError: actor died at "
           f"0x7f3a9c0b1d20 on node 5c1f0e6d8a7b9c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f; "
           f"writing {job_dir}/depth.npz failed; see /home/ops/.cache/ray/session_x/logs/raylet.out "
           "[fe80::1]:6379")
    text = public_text(raw, job_dir=job_dir)
    for bad in ("\x1b", "48213", "10.1.2.3", "0x7f3a9c0b1d20", "5c1f0e6d8a7b", str(tmp_path),
                "/home/ops", "fe80::1"):
        assert bad not in text, (bad, text)
    assert "depth.npz failed" in text and "raylet.out" in text and "RayActorError" in text
