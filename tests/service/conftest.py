"""One real gateway (uvicorn + local Ray) shared by the service tests of a session."""
from __future__ import annotations

import httpx
import pytest

from tests.service.gateway import TOKEN, Gateway, make_roots

#: Upload limit of the shared gateway (small, so the oversize case is cheap).
MAX_UPLOAD_BYTES = 1_000_000


@pytest.fixture(scope="session")
def roots(tmp_path_factory) -> dict:
    return make_roots(tmp_path_factory.mktemp("roots"))


@pytest.fixture(scope="session")
def gateway(tmp_path_factory, roots) -> Gateway:
    gw = Gateway(tmp_path_factory.mktemp("gateway") / "data", [roots["root"]],
                 VDP_MAX_UPLOAD_BYTES=str(MAX_UPLOAD_BYTES))
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture()
def http(gateway) -> httpx.Client:
    with gateway.http() as client:
        yield client


@pytest.fixture()
def client(gateway):
    from vdp.client import Client

    with Client(gateway.url, token=TOKEN) as c:
        yield c
