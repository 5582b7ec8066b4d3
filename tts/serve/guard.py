"""What every request must pass before any of its body is read (issue: an open endpoint on the internet).

A pure ASGI middleware in front of the routes: the API key is checked from the headers (401 before a byte of the
body is read or spooled to disk), and the body's size from `Content-Length` (413 at once); a client that streams
its body without a length is cut off with 413 as soon as it has sent more than the cap. Routes then parse bodies
that are already known to be small, from clients already known to hold the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

# pages and health need no key: the pages ask for it, and load balancers probe /health
PUBLIC_PATHS = frozenset({"/", "/arena", "/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
PUBLIC_PREFIXES = ("/static/",)
UPLOAD_PATH = "/v1/voices"  # multipart POST: its cap is the upload's plus room for the form's other fields
FORM_OVERHEAD = 64 * 1024


def error_body(message: str, kind: str, param: str | None = None) -> dict:
    """OpenAI's error shape; `kind` is the `code` (and labels the error metric)."""
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": kind}}


def owner_of(key: str) -> str:
    """What a request's key is known by (voices it owns): a digest, so the key itself is stored nowhere."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


OWNER = "tts_align.owner"  # the scope entry the guard sets: owner_of(the request's key), None without keys


@dataclass(frozen=True)
class GuardSettings:
    api_keys: tuple[str, ...]  # empty: no key needed
    max_body_bytes: int  # JSON bodies
    max_upload_bytes: int  # the audio file of POST /v1/voices

    def cap(self, method: str, path: str) -> int:
        upload = method == "POST" and path.rstrip("/") == UPLOAD_PATH
        return self.max_upload_bytes + FORM_OVERHEAD if upload else self.max_body_bytes


class Guard:
    """ASGI middleware: `settings()` gives the current GuardSettings (None: let everything through, e.g. before
    the ingress replica has configured it); `on_error(kind)` counts a refusal."""

    def __init__(
        self,
        app: Callable,
        settings: Callable[[], GuardSettings | None],
        on_error: Callable[[str], None] = lambda kind: None,
    ):
        self.app, self.settings, self.on_error = app, settings, on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings() if scope["type"] == "http" else None
        if settings is None:
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "")
        scope[OWNER] = None
        if settings.api_keys and not (path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)):
            given = headers.get("authorization", "")
            token = given[7:].encode() if given.startswith("Bearer ") else b""
            # every key compared, in constant time each: which key matched does not show in the timing
            matched = [k for k in settings.api_keys if hmac.compare_digest(token, k.encode())]
            if not matched:
                message = "missing or wrong API key (Authorization: Bearer <key>)"
                return await self._refuse(send, 401, message, "unauthorized")
            scope[OWNER] = owner_of(matched[0])
        cap = settings.cap(scope.get("method", "GET"), path)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return await self._refuse(send, 400, f"bad Content-Length {length[:40]!r}", "invalid_value")
            if int(length) > cap:
                return await self._refuse(send, 413, f"request body of {length} bytes; at most {cap}", "too_large")
            return await self.app(scope, receive, send)
        return await self._counted(scope, receive, send, cap)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        """A body without Content-Length (chunked): read it here, at most `cap` bytes, then replay it to the app."""
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client went away
                break
            seen += len(message.get("body", b""))
            if seen > cap:
                return await self._refuse(send, 413, f"request body larger than {cap} bytes", "too_large")
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replaying_receive() -> dict:
            return next(replay, None) or await receive()

        await self.app(scope, replaying_receive, send)

    async def _refuse(self, send: Send, status: int, message: str, kind: str) -> None:
        self.on_error(kind)
        body = json.dumps(error_body(message, kind)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
