"""Running the gateway under uvicorn (what `vdp serve` and ``python -m vdp.service`` do).

Order of startup: the port is bound (a busy port stops here, before anything is touched), the
data directory is locked and the store checked (`create_app`), then uvicorn starts the app,
whose lifespan recovers the jobs a previous gateway left running.
"""
from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys
from typing import TYPE_CHECKING, Sequence

from vdp.errors import VdpError

if TYPE_CHECKING:
    from vdp.service.settings import Settings

#: Seconds uvicorn waits for open connections (event streams end on shutdown) before closing them.
GRACEFUL_SHUTDOWN_S = 5


class PortInUseError(VdpError):
    """The gateway's address is taken (often: another gateway already listens there)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``.

    Raises:
        PortInUseError: The address is in use or cannot be bound; the message says which.
    """
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP (proto 0 left Nagle on: ~40 ms per small response).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(f"port {port} on {host} is already in use (is another vdp gateway "
                                 "running there?); choose another with --port / VDP_PORT") from None
        raise PortInUseError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def serve(settings: "Settings", *, log_level: str = "info") -> None:
    """Serve the gateway until SIGINT/SIGTERM, then shut down gracefully.

    Running jobs stop at their next batch and are queued again; the next start resumes them.

    Raises:
        PortInUseError: The port is taken.
        DataDirInUseError: Another gateway holds the data directory.
        StoreCorruptError: The job store is damaged.
    """
    import uvicorn

    from vdp.service.app import create_app
    from vdp.service.reaper import start_reaper

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = bind(settings.host, settings.port)
    try:
        app = create_app(settings)
        start_reaper()
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level,
                                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def add_serve_args(p: argparse.ArgumentParser) -> None:
    """The options of `vdp serve` / ``python -m vdp.service``."""
    p.add_argument("--host", help="interface (default VDP_HOST or 127.0.0.1; beyond loopback "
                                  "VDP_API_TOKEN is required)")
    p.add_argument("--port", type=int, help="TCP port (default VDP_PORT or 8000)")
    p.add_argument("--data-dir", help="jobs, uploads and the SQLite store (default VDP_DATA_DIR)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def run_serve(args: argparse.Namespace) -> int:
    """Load the settings from `args` and the environment, announce the gateway, serve it."""
    from vdp.service.settings import load_settings

    settings = load_settings(host=args.host, port=args.port, data_dir=args.data_dir)
    auth = "token required" if settings.api_token else "no token (loopback only)"
    print(f"vdp gateway on http://{settings.host}:{settings.port} ({auth}; data in {settings.data_dir})",
          file=sys.stderr)
    serve(settings, log_level=args.log_level)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vdp.service``: `vdp serve` without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="python -m vdp.service", description="Run the vdp gateway.")
    add_serve_args(parser)
    args = parser.parse_args(argv)
    try:
        return run_serve(args)
    except VdpError as exc:
        print(f"vdp: error: {exc}", file=sys.stderr)
        return 2
