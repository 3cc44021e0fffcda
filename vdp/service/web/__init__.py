"""The gateway's web page for people (``/``) and its offline API docs (``/docs``, ``/redoc``).

`install_web(app)` adds everything: the page, its sign-in (a session cookie that the API
accepts in place of the bearer token), a few page-only endpoints and the docs.
"""
from vdp.service.web.install import install_web

__all__ = ["install_web"]
