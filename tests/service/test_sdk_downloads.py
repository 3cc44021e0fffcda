"""SDK downloads from a real gateway check what they resume (issue 18, item 10): a stale
``.part`` with other bytes never yields a file of the right size and the wrong content."""
from __future__ import annotations

import base64
import hashlib

import pytest

from tests.service.gateway import BEAR, TOKEN, depth_spec
from vdp.client import Client


@pytest.fixture(scope="module")
def finished(gateway) -> tuple[str, bytes]:
    with Client(gateway.url, token=TOKEN) as c:
        job = c.submit(BEAR, spec=depth_spec(BEAR, max_frames=4))
        assert job.wait(180).state == "succeeded"
    real = (gateway.data_dir / "jobs" / job.id / "depth.npz").read_bytes()
    return job.id, real


def test_gateway_sends_digest_and_honours_if_range(http, finished):
    job_id, real = finished
    url = f"/v1/jobs/{job_id}/outputs/depth.npz"
    full = http.get(url)
    assert full.content == real
    assert full.headers["repr-digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(real).digest()).decode()}:"
    etag = full.headers["etag"]
    assert http.get(url, headers={"Range": "bytes=100-", "If-Range": etag}).status_code == 206
    stale = http.get(url, headers={"Range": "bytes=100-", "If-Range": '"not-it"'})
    assert stale.status_code == 200 and stale.content == real


@pytest.mark.parametrize("case", ["stale_without_etag", "corrupt_with_etag", "genuine_half"])
def test_resumed_download_yields_the_servers_bytes(gateway, http, finished, tmp_path, case):
    job_id, real = finished
    etag = http.get(f"/v1/jobs/{job_id}/outputs/depth.npz").headers["etag"]
    part = tmp_path / "depth.npz.part"
    if case == "stale_without_etag":
        part.write_bytes(b"\xaa" * (len(real) - 100))
    elif case == "corrupt_with_etag":
        part.write_bytes(b"\xaa" * 200 + real[200:len(real) - 50])
        (tmp_path / "depth.npz.part.etag").write_text(etag)
    else:
        part.write_bytes(real[: len(real) // 2])
        (tmp_path / "depth.npz.part.etag").write_text(etag)
    with Client(gateway.url, token=TOKEN) as c:
        paths = c.job(job_id).download(tmp_path, names=["depth.npz"])
    assert paths == [tmp_path / "depth.npz"]
    assert (tmp_path / "depth.npz").read_bytes() == real
    assert not part.exists() and not (tmp_path / "depth.npz.part.etag").exists()
