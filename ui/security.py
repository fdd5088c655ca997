"""HTTP hardening for the app's server: a Host-header allow list (against DNS rebinding, which could
let a web page reach a local server) and security headers on every response.

Locally the server answers only ``Host: 127.0.0.1 / localhost / [::1]`` (any port), plus the names in
``$GENSCOPE_ALLOWED_HOSTS`` (comma-separated); on a Space (``$SPACE_ID``), whose proxy sets the host,
any host. Responses carry ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and a
``Content-Security-Policy: frame-ancestors`` that allows framing by the app itself only (and by
huggingface.co on a Space, which embeds it). A page of another site gets no CORS grant (no
``Access-Control-Allow-Origin`` / ``-Credentials``), and request bodies and uploads are bounded
before they are read (:class:`BoundedBodies`, limits in :mod:`ui.budget`).
"""
from __future__ import annotations

import os
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from . import budget
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

        foreign = _foreign_origin(scope)

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if not (foreign and k.lower() in CORS_GRANTS)]  # no credentials for other sites
                names = {name.lower() for name, _ in headers}
                message["headers"] = [*headers, *[h for h in self.headers if h[0] not in names]]
            await send(message)

        await self.app(scope, receive, send_with_headers)


CORS_GRANTS = (b"access-control-allow-origin", b"access-control-allow-credentials")


def _foreign_origin(scope: dict) -> bool:
    """Whether a request comes from a page of another site than this app (its Origin header names
    another host than the one it asked for)."""
    headers = dict(scope.get("headers") or [])
    origin, host = headers.get(b"origin"), headers.get(b"host")
    if origin is None:
        return False
    origin_host = origin.split(b"://", 1)[-1].rstrip(b"/")
    return host is None or origin_host.lower() != host.lower()


UPLOAD_ROUTE = "/gradio_api/upload"


class BoundedBodies:
    """ASGI middleware refusing, before they are parsed or queued, request bodies over the budget's
    ``body_kb`` (uploads: ``upload_files`` files of Gradio's per-file limit) and uploads of more files."""

    def __init__(self, app: Any, max_file_bytes: int = 1024 * 1024):
        self.app, self.max_file_bytes = app, max_file_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        spent = budget.current()
        upload = scope.get("path", "").endswith(UPLOAD_ROUTE)
        limit = spent.upload_files * (self.max_file_bytes + 64 * 1024) if upload else spent.body_kb * 1024
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, 413, f"request body over the limit of {limit // 1024:,} kB"
                          f" ({'GENSCOPE_UPLOAD_FILES files' if upload else 'GENSCOPE_BODY_KB'})")
            return
        chunks, size = [], 0
        while True:  # read (at most the limit), then hand the body on
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await _refuse(send, 413, f"request body over the limit of {limit // 1024:,} kB")
                return
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if upload and body.count(b'filename="') > spent.upload_files:
            await _refuse(send, 413, f"at most {spent.upload_files} files per upload (GENSCOPE_UPLOAD_FILES)")
            return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(send: Any, status: int, message: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": ('{"detail": "%s"}' % message).encode()})


def app_kwargs() -> dict:
    """Keyword arguments for Gradio's FastAPI app (``launch(app_kwargs=...)``) adding the middlewares:
    the Host allow list, the security headers, and the refusal of Gradio's deep-link route
    (:mod:`ui.sessions`)."""
    ancestors = SPACE_FRAME_ANCESTORS if os.environ.get("SPACE_ID") else "'self'"
    return {"middleware": [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts()),
                           Middleware(SecurityHeaders, frame_ancestors=ancestors),
                           Middleware(BoundedBodies), Middleware(RefuseDeepLinks)]}
