"""Property-based fuzzing of every operation in the gateway's OpenAPI schema (schemathesis).

Valid (positive) and invalid (negative) requests generated from the schema must never get a
5xx, and every response must match what the schema declares (status code, content type,
headers, body schema). Hypothesis drives each operation directly (schemathesis' pytest plugin
does not load with this pytest).
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.service.gateway import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 50


@pytest.fixture(scope="session")
def api_schema(gateway):
    return schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")


def _operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def test_schema_has_every_route(api_schema):
    labels = {op.label for op in _operations(api_schema)}
    assert labels == {
        "POST /v1/jobs", "GET /v1/jobs", "GET /v1/jobs/{job_id}", "GET /v1/jobs/{job_id}/events",
        "POST /v1/jobs/{job_id}/cancel", "DELETE /v1/jobs/{job_id}", "GET /v1/jobs/{job_id}/outputs",
        "GET /v1/jobs/{job_id}/outputs/{name}", "POST /v1/uploads", "GET /v1/uploads/{upload_id}",
        "DELETE /v1/uploads/{upload_id}", "GET /v1/presets", "GET /healthz", "GET /readyz",
        "GET /metrics",
    }


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_schema_fuzzing_finds_no_server_errors(api_schema, mode):
    failures = {}
    for op in _operations(api_schema):
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            # Schema-valid is not enough to be accepted: an input must also exist on the gateway.
            case.call_and_validate(headers=AUTH, timeout=60, excluded_checks=[positive_data_acceptance])

        try:
            fuzz()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, f"{op.label}: no valid request can be generated"
        except Exception as exc:  # collect every operation's failure, then report them together
            failures[op.label] = _describe(exc)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    for sub in getattr(exc, "exceptions", ()):
        parts.append(f"  - {type(sub).__name__}: {sub}")
    return "\n".join(parts)[:3000]


def test_real_responses_conform_to_the_schema(api_schema, gateway, tmp_path):
    """Fuzzed ids never exist, so check the success responses on a real job and upload too."""
    from tests.conftest import MEDIA
    from tests.service.gateway import BEAR, depth_spec

    with gateway.http() as http:
        upload = http.post("/v1/uploads", params={"filename": BEAR}, content=(MEDIA / BEAR).read_bytes()).json()
        spec = depth_spec(upload["input"], max_frames=4,
                          outputs=[{"kind": "depth_npz"}, {"kind": "depth_png16"}])
        job_id = http.post("/v1/jobs", json=spec).json()["id"]
        with http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=180) as r:
            for _ in r.iter_lines():
                pass
        assert http.get(f"/v1/jobs/{job_id}").json()["state"] == "succeeded"

    def call(label: str, *, expect: int, **kwargs) -> None:
        op = api_schema.find_operation_by_label(label)
        case = api_schema.make_case(operation=op, **kwargs)
        response = case.call_and_validate(headers=AUTH, timeout=180,
                                          excluded_checks=[positive_data_acceptance])
        assert response.status_code == expect, (label, response.text[:300])

    job = {"job_id": job_id}
    call("GET /v1/jobs/{job_id}", path_parameters=job, expect=200)
    call("GET /v1/jobs", query={"state": "succeeded", "limit": 2}, expect=200)
    call("GET /v1/jobs/{job_id}/events", path_parameters=job, expect=200)
    call("GET /v1/jobs/{job_id}/outputs", path_parameters=job, expect=200)
    for name in ("depth.npz", "spec.json", "depth_png16"):
        call("GET /v1/jobs/{job_id}/outputs/{name}", path_parameters={**job, "name": name}, expect=200)
    call("GET /v1/jobs/{job_id}/outputs/{name}", path_parameters={**job, "name": "depth.npz"},
         headers={"Range": "bytes=0-9"}, expect=206)
    call("POST /v1/jobs/{job_id}/cancel", path_parameters=job, expect=409)
    call("GET /v1/uploads/{upload_id}", path_parameters={"upload_id": upload["id"]}, expect=200)
    call("GET /v1/presets", expect=200)
    call("GET /readyz", expect=200)
    call("GET /metrics", expect=200)
    call("DELETE /v1/jobs/{job_id}", path_parameters=job, expect=204)
    call("DELETE /v1/uploads/{upload_id}", path_parameters={"upload_id": upload["id"]}, expect=204)
