"""Running the gateway under uvicorn (what `vdp serve` and ``python -m vdp.service`` do)."""
from __future__ import annotations

import logging

from vdp.service.settings import Settings

#: Seconds uvicorn waits for open connections (event streams end on shutdown) before closing them.
GRACEFUL_SHUTDOWN_S = 5


def serve(settings: Settings, *, log_level: str = "info") -> None:
    """Serve the gateway until SIGINT/SIGTERM, then shut down gracefully.

    Running jobs stop at their next batch and are queued again; the next start resumes them.
    """
    import uvicorn

    from vdp.service.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, access_log=False)
    uvicorn.Server(config).run()
