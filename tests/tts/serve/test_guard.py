"""The request guard (tts/serve/guard.py): key and size checked from the headers before the body is read."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tts.serve.guard import FORM_OVERHEAD, Guard, GuardSettings

KEY = "k" * 32


@pytest.fixture
def app():
    """(client, state): a route that records every body it read; the guard in front of it."""
    state = {"bodies": [], "errors": [], "settings": GuardSettings((KEY,), max_body_bytes=100, max_upload_bytes=1000)}

    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        state["bodies"].append(body)
        return JSONResponse({"bytes": len(body)})

    routes = [Route(p, echo, methods=["GET", "POST"]) for p in ("/v1/audio/speech", "/v1/voices", "/health")]
    inner = Starlette(routes=routes)
    guarded = Guard(inner, lambda: state["settings"], state["errors"].append)
    return TestClient(guarded), state


def auth(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_key_is_checked_before_the_body_is_read(app):
    client, state = app
    for headers in ({}, auth("wrong"), {"Authorization": KEY}):
        r = client.post("/v1/audio/speech", content=b"x" * 50, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    big = client.post("/v1/audio/speech", content=b"x" * 10_000)  # no key and too large: 401 first
    assert big.status_code == 401
    assert state["bodies"] == [] and state["errors"] == ["unauthorized"] * 4
    assert client.get("/health").status_code == 200  # public: probes need no key
    assert client.post("/v1/audio/speech", content=b"hi", headers=auth()).json() == {"bytes": 2}


def test_declared_size_over_the_cap_is_413_unread(app):
    client, state = app
    r = client.post("/v1/audio/speech", content=b"x" * 101, headers=auth())
    assert r.status_code == 413 and "at most 100" in r.json()["error"]["message"]
    assert client.post("/v1/audio/speech", content=b"x" * 100, headers=auth()).status_code == 200
    # the upload route's cap is the upload's plus the form's other fields
    assert client.post("/v1/voices", content=b"x" * (1000 + FORM_OVERHEAD), headers=auth()).status_code == 200
    assert client.post("/v1/voices", content=b"x" * (1001 + FORM_OVERHEAD), headers=auth()).status_code == 413
    bad = client.post("/v1/audio/speech", content=b"x", headers={**auth(), "content-length": "-1"})
    assert bad.status_code == 400 and "Content-Length" in bad.json()["error"]["message"]
    assert [len(b) for b in state["bodies"]] == [100, 1000 + FORM_OVERHEAD]


def chunks(n: int, size: int = 30):
    for _ in range(n):
        yield b"y" * size


def test_a_streamed_body_without_length_is_cut_at_the_cap(app):
    client, state = app
    r = client.post("/v1/audio/speech", content=chunks(10), headers=auth())  # chunked: 300 bytes, no length
    assert r.status_code == 413 and "larger than 100" in r.json()["error"]["message"]
    ok = client.post("/v1/audio/speech", content=chunks(3), headers=auth())  # 90 bytes reach the route whole
    assert ok.status_code == 200 and state["bodies"] == [b"y" * 90]


def test_no_settings_no_checks(app):
    client, state = app
    state["settings"] = None
    assert client.post("/v1/audio/speech", content=b"x" * 500).status_code == 200
    state["settings"] = GuardSettings((), max_body_bytes=100, max_upload_bytes=1000)  # no key: size only
    assert client.post("/v1/audio/speech", content=b"x" * 50).status_code == 200
    assert client.post("/v1/audio/speech", content=b"x" * 500).status_code == 413
