"""Gradio's queue protocol spoken by hand, as a hostile client would: any JSON body, any event data,
any session hash (``gradio_client`` only sends what its types allow)."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from typing import Any, Optional


def fn_index(demo: Any, api_name: str) -> int:
    """The function index of the event with ``api_name`` (or the function name for private ones)."""
    for index, fn in demo.fns.items():
        if fn.api_name == api_name.lstrip("/") or (fn.api_name in (None, False) and fn.name == api_name):
            return index
    raise KeyError(api_name)


def post(url: str, body: bytes, headers: Optional[dict] = None, timeout: float = 30) -> tuple[int, bytes]:
    """(status, body) of a POST; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def call(app_url: str, demo: Any, api_name: str, data: list, event_data: Any = None,
         session: Optional[str] = None, timeout: float = 60) -> dict:
    """Queue one event and wait for it: {"status": HTTP status of the join, "detail": its refusal,
    "success": bool, "output": the completed message's output}."""
    session = session or uuid.uuid4().hex
    body = json.dumps({"data": data, "event_data": event_data, "fn_index": fn_index(demo, api_name),
                       "trigger_id": None, "session_hash": session}).encode()
    status, reply = post(f"{app_url}gradio_api/queue/join", body)
    if status != 200:
        return {"status": status, "detail": json.loads(reply or b"{}").get("detail", ""), "success": False}
    stream = urllib.request.urlopen(f"{app_url}gradio_api/queue/data?session_hash={session}", timeout=timeout)
    with stream:
        for line in stream:
            if not line.startswith(b"data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                return {"status": status, "success": message.get("success", False),
                        "output": message.get("output", {})}
    return {"status": status, "success": False, "output": {}}


def texts(result: dict) -> str:
    """Every string in a completed event's output data (messages, HTML), joined, without Markdown's
    backslash escapes; a refused join gives its detail."""
    if "detail" in result:
        return result["detail"]
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
    walk(result.get("output", {}))
    return re.sub(r"\\(.)", r"\1", "\n".join(found))
