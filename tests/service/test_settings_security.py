"""Settings from the environment, the loopback rule for tokens, constant-time token checks,
and the app's schema and readiness without a cluster (in-process, no Ray)."""
from __future__ import annotations

import os
import warnings

import pytest

with warnings.catch_warnings():  # starlette suggests another HTTP package for its test client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from vdp.service.errors import ServiceError, http_status
from vdp.service.security import check_token
from vdp.service.settings import SettingsError, get_settings, is_loopback, load_settings

TOKEN = "0123456789abcdef0123"


@pytest.fixture()
def env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("VDP_") or key == "RAY_ADDRESS":
            monkeypatch.delenv(key)
    monkeypatch.setenv("VDP_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                           ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                           ("::", False), ("192.168.1.5", False), ("example.org", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_beyond_loopback_requires_a_token(env):
    with pytest.raises(SettingsError, match="0.0.0.0 .*requires VDP_API_TOKEN"):
        load_settings(host="0.0.0.0")
    env.setenv("VDP_API_TOKEN", TOKEN)
    assert load_settings(host="0.0.0.0").api_token.get_secret_value() == TOKEN


def test_short_token_is_refused(env):
    env.setenv("VDP_API_TOKEN", "short")
    with pytest.raises(SettingsError, match="api_token: .*at least 16 characters"):
        load_settings()


def test_env_parsing(env, tmp_path):
    env.setenv("VDP_INPUT_ROOTS", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    env.setenv("VDP_READY_PRESETS", "depth, matte")
    env.setenv("VDP_MAX_CONCURRENT_JOBS", "3")
    env.setenv("RAY_ADDRESS", "ray://head:10001")
    s = load_settings()
    assert s.input_roots == [tmp_path / "a", tmp_path / "b"]
    assert s.ready_presets == ["depth", "matte"] and s.max_concurrent_jobs == 3
    assert s.ray_address == "ray://head:10001"
    env.setenv("VDP_INPUT_ROOTS", f'["{tmp_path / "c"}"]')
    env.setenv("VDP_READY_PRESETS", "")
    s = load_settings()
    assert s.input_roots == [tmp_path / "c"] and s.ready_presets == []
    env.setenv("VDP_MAX_CONCURRENT_JOBS", "-1")
    with pytest.raises(SettingsError, match="max_concurrent_jobs"):
        load_settings()


def test_get_settings_is_cached(env):
    get_settings.cache_clear()
    try:
        assert get_settings() is get_settings()
    finally:
        get_settings.cache_clear()


def test_check_token():
    check_token(None, None)  # no token configured: open
    check_token(TOKEN, f"Bearer {TOKEN}")
    check_token(TOKEN, f"bearer  {TOKEN} ")
    for header, code in [(None, "missing_token"), ("", "missing_token"), (TOKEN, "missing_token"),
                         (f"Basic {TOKEN}", "missing_token"), ("Bearer ", "missing_token"),
                         (f"Bearer {TOKEN}x", "invalid_token"), ("Bearer é", "invalid_token")]:
        with pytest.raises(ServiceError) as info:
            check_token(TOKEN, header)
        assert (http_status(info.value), info.value.code) == (401, code), header


def make_app(tmp_path, **kw):
    from vdp.service import Settings, create_app

    return create_app(Settings(data_dir=tmp_path / "data", **kw))


def test_openapi_documents_every_error_as_error_body(tmp_path):
    schema = make_app(tmp_path).openapi()
    assert "HTTPValidationError" not in str(schema)
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert "422" in op["responses"], (method, path)
            for status, response in op["responses"].items():
                if status[0] in "45" and path != "/readyz":
                    assert response["content"] == {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}, (method, path, status)
            if path.startswith("/v1/"):
                assert op["security"] == [{"HTTPBearer": []}] and "401" in op["responses"]
    body = schema["paths"]["/v1/jobs"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobSpec"}
    assert "JobSpec" in schema["components"]["schemas"]


def test_readyz_without_cluster_and_with_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("VDP_MODEL_DIR", str(tmp_path / "no-models"))
    app = make_app(tmp_path, ready_presets=["depth", "matte", "nope"])
    client = TestClient(app)  # no lifespan: Ray is never connected
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False and body["ray"] is False
    assert body["presets"] == {"depth": False, "matte": False, "nope": False}
    assert body["problems"][0].startswith("Ray is not connected")
    assert any("['vits']" in p for p in body["problems"])
    assert any("'nope' does not exist" in p for p in body["problems"])
    assert str(tmp_path) not in r.text, "readyz must not reveal server paths"


def test_unexpected_errors_hide_their_details(tmp_path):
    app = make_app(tmp_path)

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret internals at /srv/private")

    r = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert r.status_code == 500 and r.json()["code"] == "internal"
    assert "secret" not in r.text and "Traceback" not in r.text
