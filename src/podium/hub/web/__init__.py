"""The hub's web UI: server-rendered pages (Jinja2, autoescaped) and one stylesheet.

The pages need no JavaScript. The app's Content-Security-Policy allows only the hub's own
stylesheet, so templates carry no inline styles or scripts; My Pods reloads itself with a
``<meta http-equiv="refresh">``. Sessions, anti-forgery tokens and same-origin checks are in
:mod:`podium.hub.web.session`; errors become pages in :mod:`podium.hub.web.route`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from podium.hub.web import pages_access, pages_auth, pages_pods
from podium.hub.web.render import STATIC_DIR, WebSettings

__all__ = ["WebSettings", "build_web"]


def build_web(app: FastAPI, *, pods_refresh_s: int = 2) -> None:
    """Add the web pages to ``app`` and serve ``/static``; My Pods reloads every
    ``pods_refresh_s`` seconds."""
    if pods_refresh_s < 1:
        raise ValueError(f"pods_refresh_s must be at least 1, got {pods_refresh_s}")
    app.state.web_settings = WebSettings(pods_refresh_s=pods_refresh_s)
    for module in (pages_auth, pages_pods, pages_access):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
