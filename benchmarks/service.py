"""Gateway benchmark: `GET /v1/jobs/{id}` throughput and submit latency vs. queue length.

Starts a real gateway (uvicorn, local Ray) with ``VDP_MAX_CONCURRENT_JOBS=0`` so submitted jobs
stay queued, then:

* submit latency with N queued jobs, for N = 10 and N = 1000 (alternating, `--rounds` times,
  so load drift on a shared machine hits both): each timed submit is followed by an (untimed)
  cancel, so the queue stays at N; the ratio p50(1000) / p50(10) shows whether submitting slows
  down as the queue grows;
* requests/s of ``GET /v1/jobs/{id}`` with 1000+ jobs in the store, from one keep-alive
  connection and from several threads.

Usage::

    .venv/bin/python benchmarks/service.py [--samples 200] [--seconds 5] [--threads 4] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "resources" / "media" / "androidx__bear-vp9-odd-dimensions.webm"
TOKEN = "benchmark-token-0123456789"
SPEC = {"input": CLIP.name,
        "stages": {"depth": {"model": "vits", "input_size": 56, "synthetic_weights": True}},
        "outputs": [{"kind": "depth_npz"}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(workdir: Path) -> tuple[subprocess.Popen, str]:
    root = workdir / "inputs"
    root.mkdir()
    shutil.copy(CLIP, root / CLIP.name)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VDP_", "RAY_ADDRESS"))}
    env.update(VDP_DATA_DIR=str(workdir / "data"), VDP_INPUT_ROOTS=str(root), VDP_API_TOKEN=TOKEN,
               VDP_MAX_CONCURRENT_JOBS="0", VDP_READY_PRESETS="", PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "vdp.service", "--port", str(port), "--log-level", "warning"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).json().get("ray"):
                return proc, url
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    stop_gateway(proc)
    raise RuntimeError("gateway did not become ready")


def stop_gateway(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def set_queue(http: httpx.Client, target: int) -> None:
    """Submit or cancel jobs until exactly `target` are queued."""
    queued = list(_iter_ids(http, "queued"))
    for job_id in queued[target:]:
        http.post(f"/v1/jobs/{job_id}/cancel").raise_for_status()
    for _ in range(target - len(queued)):
        http.post("/v1/jobs", json=SPEC).raise_for_status()


def _iter_ids(http: httpx.Client, state: str):
    cursor = None
    while True:
        params = {"state": state, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/jobs", params=params).json()
        yield from (j["id"] for j in page["jobs"])
        cursor = page["next_cursor"]
        if not cursor:
            return


def submit_latency(http: httpx.Client, samples: int) -> list[float]:
    """Seconds per submit; each submitted job is cancelled again (untimed)."""
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        r = http.post("/v1/jobs", json=SPEC)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
        http.post(f"/v1/jobs/{r.json()['id']}/cancel").raise_for_status()  # keep the queue at N
    return times


def get_throughput(url: str, job_id: str, seconds: float, threads: int) -> dict:
    def loop(counter: list[int], stop: threading.Event) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as h:
            while not stop.is_set():
                h.get(f"/v1/jobs/{job_id}").raise_for_status()
                counter[0] += 1

    out = {}
    for n in (1, threads):
        counters = [[0] for _ in range(n)]
        stop = threading.Event()
        workers = [threading.Thread(target=loop, args=(c, stop)) for c in counters]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        time.sleep(seconds)
        stop.set()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
        out[f"{n}_client{'s' if n > 1 else ''}"] = round(sum(c[0] for c in counters) / elapsed, 1)
    return out


def _summary(times: list[float]) -> dict:
    ms = sorted(t * 1000 for t in times)
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2), "mean_ms": round(statistics.fmean(ms), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200, help="timed submits per queue length")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each GET throughput run")
    parser.add_argument("--threads", type=int, default=4, help="concurrent clients in the second GET run")
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4, help="alternations between the two queue lengths")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vdp-bench-") as tmp:
        proc, url = start_gateway(Path(tmp))
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
                results: dict = {"cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0]}
                times: dict[int, list[float]] = {args.small: [], args.large: []}
                # Alternate the two queue lengths so load drift on a shared machine hits both.
                for round_ in range(args.rounds):
                    for n in (args.small, args.large):
                        set_queue(http, n)
                        times[n] += submit_latency(http, args.samples // args.rounds)
                        print(f"round {round_ + 1}: {n} queued, {len(times[n])} submits timed", file=sys.stderr)
                for n, t in times.items():
                    results[f"submit_latency_queued_{n}"] = _summary(t)
                small = results[f"submit_latency_queued_{args.small}"]["p50_ms"]
                large = results[f"submit_latency_queued_{args.large}"]["p50_ms"]
                results["submit_p50_ratio_large_over_small"] = round(large / small, 3)
                job_id = next(_iter_ids(http, "queued"))
                results["jobs_in_store"] = sum(1 for _ in _iter_ids(http, "queued")) + sum(
                    1 for _ in _iter_ids(http, "cancelled"))
                results["get_job_requests_per_s"] = get_throughput(url, job_id, args.seconds, args.threads)
        finally:
            stop_gateway(proc)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
