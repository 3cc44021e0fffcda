"""``/docs`` (Swagger UI) and ``/redoc`` served from the assets the `fastapi_offline` package
ships (Swagger UI: Apache-2.0, ReDoc: MIT, the package: MIT), so they render without internet."""
from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

DOCS_STATIC = "/web/docs-static"
#: The docs pages may load nothing from elsewhere (ReDoc would fetch its logo from a CDN).
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; font-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def docs_assets() -> str:
    """The folder of Swagger UI / ReDoc files inside the installed `fastapi_offline` package."""
    return str(resources.files("fastapi_offline").joinpath("static"))


def install_docs(app: FastAPI) -> None:
    """Replace FastAPI's CDN-based ``/docs`` and ``/redoc`` with local ones."""
    paths = {app.docs_url or "/docs", app.redoc_url or "/redoc"}
    app.router.routes[:] = [r for r in app.router.routes
                            if not (isinstance(r, Route) and r.path in paths)]
    app.mount(DOCS_STATIC, StaticFiles(directory=docs_assets()), name="docs-static")
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local_only(get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - API",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
            oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url))

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local_only(get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_STATIC}/favicon.png", with_google_fonts=False))

    app.include_router(router)


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page
