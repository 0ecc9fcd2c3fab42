"""Rendering pages: one Jinja2 environment with autoescaping on for every template."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from podium.hub.accounts import Principal
from podium.hub.web.session import csrf_for, get_services

__all__ = ["STATIC_DIR", "TEMPLATE_DIR", "WebSettings", "environment", "render", "web_settings"]

_HERE = Path(__file__).parent
TEMPLATE_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"


@dataclass(frozen=True, slots=True)
class WebSettings:
    """How the pages behave: ``pods_refresh_s`` is how often My Pods reloads itself."""

    pods_refresh_s: int = 2


def web_settings(request: Request) -> WebSettings:
    """The settings :func:`podium.hub.web.build_web` attached to the app."""
    settings: WebSettings = request.app.state.web_settings
    return settings


def _when(value: datetime | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS UTC`` ('never' for None)."""
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def environment() -> Environment:
    """The pages' Jinja2 environment: autoescape everywhere, undefined names are errors."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    return env


_ENV = environment()


def render(
    request: Request,
    template: str,
    *,
    principal: Principal | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page: ``template`` with the signed-in user, their anti-forgery token and
    ``context``. Pages are never cached: they show one user's view."""
    services = get_services(request)
    html = _ENV.get_template(template).render(
        user=principal,
        csrf=csrf_for(services, principal),
        path=request.url.path,
        **context,
    )
    all_headers = {"Cache-Control": "no-store", **(headers or {})}
    return HTMLResponse(html, status_code=status_code, headers=all_headers)
