"""`install_web`: one call that adds the page, its session cookie and the offline docs."""
from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from vdp.service.web.docs import install_docs
from vdp.service.web.pages import api, router
from vdp.service.web.session import SessionCookieMiddleware

STATIC = "/web/static"


def install_web(app: FastAPI) -> None:
    """Add ``/``, ``/jobs/{id}``, sign-in, ``/web/api``, the page's assets and offline docs;
    the API then also accepts the page's session cookie (see `vdp.service.web.session`)."""
    app.include_router(router)
    app.include_router(api)
    app.mount(STATIC, StaticFiles(directory=str(resources.files("vdp.service.web").joinpath("static"))),
              name="web-static")
    install_docs(app)

    def token() -> str | None:
        secret = app.state.settings.api_token
        return None if secret is None else secret.get_secret_value()

    app.add_middleware(SessionCookieMiddleware, token=token)
