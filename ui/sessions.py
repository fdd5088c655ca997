"""What the server keeps per visitor. Gradio copies every output value of every event into the
session (``SessionState.config_values``) so that its deep-link button can rebuild the page; for
GenScope that is each keystroke's figures and trace JSON, about 17 MB per visitor that stay until
the session expires (gradio-app/gradio#11009 reports the growth). GenScope offers no deep-link
button (its shareable links carry the view in the address), so sessions keep what the handlers
read — their ``gr.State`` values and updated component settings — and no copies of outputs; the
``/gradio_api/deep_link`` route, which would write those copies to disk, is refused.
"""
from __future__ import annotations

from typing import Any

from gradio.state_holder import SessionState

DEEP_LINK_ROUTE = "/gradio_api/deep_link"


def _keep_no_output_copy(self: SessionState, key: int, value: Any) -> None:
    """Stands in for ``SessionState._update_value_in_config``: the value is not copied."""


def keep_no_output_copies() -> None:
    """Stop Gradio's sessions from holding a copy of every output (call once, before serving)."""
    SessionState._update_value_in_config = _keep_no_output_copy


class RefuseDeepLinks:
    """ASGI middleware answering 404 to Gradio's deep-link route."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").endswith(DEEP_LINK_ROUTE):
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"GenScope links carry the view in ?view="})
            return
        await self.app(scope, receive, send)
