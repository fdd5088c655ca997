"""HTTP hardening for the app's server: a Host-header allow list (against DNS rebinding, which could
let a web page reach a local server) and security headers on every response.

Locally the server answers only ``Host: 127.0.0.1 / localhost / [::1]`` (any port), plus the names in
``$GENSCOPE_ALLOWED_HOSTS`` (comma-separated); on a Space (``$SPACE_ID``), whose proxy sets the host,
any host. Responses carry ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and a
``Content-Security-Policy: frame-ancestors`` that allows framing by the app itself only (and by
huggingface.co on a Space, which embeds it).
"""
from __future__ import annotations

import os
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .sessions import RefuseDeepLinks

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
SPACE_FRAME_ANCESTORS = "'self' https://huggingface.co https://*.hf.space"


def allowed_hosts() -> list[str]:
    """Host names this server answers."""
    if os.environ.get("SPACE_ID"):
        return ["*"]
    extra = [h.strip() for h in os.environ.get("GENSCOPE_ALLOWED_HOSTS", "").split(",") if h.strip()]
    return [*LOCAL_HOSTS, *extra]


class SecurityHeaders:
    """ASGI middleware adding the security headers to every HTTP response."""

    def __init__(self, app: Any, frame_ancestors: str = "'self'"):
        self.app = app
        self.headers = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                        (b"content-security-policy", f"frame-ancestors {frame_ancestors}".encode())]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *[h for h in self.headers if h[0] not in names]]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def app_kwargs() -> dict:
    """Keyword arguments for Gradio's FastAPI app (``launch(app_kwargs=...)``) adding the middlewares:
    the Host allow list, the security headers, and the refusal of Gradio's deep-link route
    (:mod:`ui.sessions`)."""
    ancestors = SPACE_FRAME_ANCESTORS if os.environ.get("SPACE_ID") else "'self'"
    return {"middleware": [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts()),
                           Middleware(SecurityHeaders, frame_ancestors=ancestors),
                           Middleware(RefuseDeepLinks)]}
