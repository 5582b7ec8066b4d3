"""The Serve app end to end on a tiny random policy: OpenAI-compatible speech, voices, bad input, overload."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import struct
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.tts.serve.codecs import bursts
from tests.tts.serve.tiny_app import KEY, KEY2
from tts.serve.config import MAX_INPUT_CHARS

pytestmark = pytest.mark.slow


def client(url: str, key: str = KEY) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)


def speech(**kw) -> dict:
    return {"model": "tts-1", "input": "hello there", "voice": "default", "response_format": "wav", **kw}


def wav_of(data: bytes) -> np.ndarray:
    return sf.read(io.BytesIO(data), dtype="float32")[0]


def test_health_and_docs(server):
    url, *_ = server
    with httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/health").json()["status"] == "ok"
        paths = c.get("/openapi.json").json()["paths"]
        assert {"/v1/audio/speech", "/v1/voices", "/health"} <= set(paths)
        for page in ("/", "/arena", "/static/common.js", "/static/pages.css"):
            assert c.get(page).status_code == 200, page
        for missing in ("/static/app.py", "/static/..%2Fapp.py", "/static/"):
            assert c.get(missing).status_code == 404, missing
        model = c.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).json()["data"][0]
        assert model["languages"] == ["en"] and "[happy]" in model["markup_tags"]


def test_streamed_wav_arrives_in_chunks(server):
    url, cfg, _ = server
    with client(url) as c, c.stream("POST", "/v1/audio/speech", json=speech(seed=1)) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        parts = [p for p in r.iter_bytes() if p]
    wave = wav_of(b"".join(parts))
    assert len(wave) > 0 and len(wave) % (16000 // 50) == 0


def test_seed_makes_generation_reproducible_and_pcm_matches_wav(server):
    url, *_ = server
    with client(url) as c:
        a = c.post("/v1/audio/speech", json=speech(seed=7, stream=False)).content
        b = c.post("/v1/audio/speech", json=speech(seed=7, response_format="pcm", stream=False)).content
    np.testing.assert_array_equal(np.frombuffer(a[44:], "<i2"), np.frombuffer(b, "<i2"))
    # a non-streamed WAV is sent whole: its header carries the exact sizes, not the streaming placeholders
    assert struct.unpack("<I", a[4:8])[0] == len(a) - 8 and struct.unpack("<I", a[40:44])[0] == len(a) - 44


@pytest.mark.parametrize("fmt", ["flac", "mp3", "opus"])
def test_compressed_formats_decode(server, fmt):
    url, *_ = server
    with client(url) as c:
        r = c.post("/v1/audio/speech", json=speech(response_format=fmt, seed=3))
    assert r.status_code == 200
    assert len(sf.read(io.BytesIO(r.content))[0]) > 0


def test_official_openai_client(server):
    from openai import OpenAI

    url, *_ = server
    oa = OpenAI(base_url=f"{url}/v1", api_key=KEY)
    with oa.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="default",
        input="[happy] hello [laugh] world",
        response_format="wav",
        extra_body={"seed": 2, "language": "en"},
    ) as r:
        data = b"".join(r.iter_bytes())
    assert len(wav_of(data)) > 0
    mp3 = oa.audio.speech.create(model="tts-1", voice="default", input="hi").content  # OpenAI's default format
    assert len(sf.read(io.BytesIO(mp3))[0]) > 0


def test_voice_clone_upload_list_use_delete(server):
    """An uploaded voice lives in the registry, not in one API replica (the server runs two): usable through any
    replica once made, gone from every replica once deleted, and seen only by the key that made it."""
    url, cfg, _ = server
    assert cfg.api.num_replicas == 2
    buf = io.BytesIO()
    sf.write(buf, bursts(2.0), 16000, format="WAV")
    with client(url) as c, client(url, key=KEY2) as other:
        r = c.post("/v1/voices", files={"file": ("ref.wav", buf.getvalue())}, data={"text": "a reference", "name": "A"})
        assert r.status_code == 201, r.text
        vid = r.json()["id"]
        assert vid in [v["id"] for v in c.get("/v1/voices").json()["data"]]
        assert vid not in [v["id"] for v in other.get("/v1/voices").json()["data"]]
        assert other.post("/v1/audio/speech", json=speech(voice=vid)).status_code == 404  # not its voice
        assert other.delete(f"/v1/voices/{vid}").status_code == 404
        for seed in range(6):  # requests spread over both replicas
            assert c.post("/v1/audio/speech", json=speech(voice={"id": vid}, seed=seed)).status_code == 200
        assert c.delete(f"/v1/voices/{vid}").status_code == 200
        for _ in range(6):
            assert c.post("/v1/audio/speech", json=speech(voice=vid)).status_code == 404


def short_wav(seconds: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, bursts(seconds), 16000, format="WAV")
    return buf.getvalue()


@pytest.mark.parametrize(
    "files, data, status, needle",
    [
        ({"file": ("x.wav", b"not audio at all")}, {"text": "t"}, 400, "not a readable audio"),
        ({"file": ("x.wav", short_wav(2.0)[:30])}, {"text": "t"}, 400, "not a readable audio"),
        ({"file": ("x.wav", short_wav(0.3))}, {"text": "t"}, 400, "voices need"),
        ({"file": ("x.wav", short_wav(40.0))}, {"text": "t"}, 400, "voices need"),
        ({"file": ("../../etc/passwd", short_wav(2.0))}, {"text": " "}, 400, "text must be"),
        ({}, {"text": "t"}, 400, "file"),
    ],
)
def test_bad_uploads_get_clear_4xx(server, files, data, status, needle):
    url, *_ = server
    with client(url) as c:
        r = c.post("/v1/voices", files=files or None, data=data)
    assert r.status_code == status and needle in r.json()["error"]["message"], r.text


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (speech(input=""), 400, "input is empty"),
        (speech(input="   "), 400, "input is empty"),
        (speech(input="x" * 201), 400, "at most 200"),
        (speech(voice="alloy"), 404, "unknown voice"),
        (speech(voice="../../etc/passwd"), 404, "unknown voice"),
        (speech(model="gpt-4"), 404, "unknown model"),
        (speech(response_format="aac"), 400, "not supported"),
        (speech(speed=10.0), 400, "speed"),
        (speech(temperature=-1), 400, "temperature"),
        (speech(top_p=2), 400, "top_p"),
        (speech(stream_format="sse"), 400, "stream_format"),
        (speech(instructions="be happy"), 400, "instructions"),
        (speech(language="de"), 400, "language 'de' is not supported by this model; supported: ['en']"),
        (speech(language=""), 400, "language '' is not supported"),
        (speech(input="[happy] hi [dancing]"), 400, "unknown markup tag [dancing]; supported tags: [angry]"),
        (speech(bogus=1), 400, "bogus"),
        ({"input": "hi"}, 400, "model"),
    ],
)
def test_bad_speech_requests_get_clear_4xx(server, body, status, needle):
    url, *_ = server
    with client(url) as c:
        r = c.post("/v1/audio/speech", json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]


def test_malformed_json_and_auth(server):
    url, *_ = server
    with client(url) as c:
        r = c.post("/v1/audio/speech", content=b'{"model": "tts-1", ', headers={"content-type": "application/json"})
        assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    with client(url, key="wrong") as c:
        assert c.post("/v1/audio/speech", json=speech()).status_code == 401
        assert c.get("/v1/voices").status_code == 401


def test_key_and_size_are_checked_before_the_body(server):
    """The guard answers from the headers: 401 before an unauthenticated body is read, 413 for a body over the cap
    (a chunked one too), and the same app keeps serving."""
    url, cfg, _ = server
    cap = cfg.limits.max_body_bytes
    json_headers = {"content-type": "application/json"}
    with client(url, key="wrong") as c:
        r = c.post("/v1/audio/speech", content=b" " * (cap - 1), headers=json_headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert c.get("/health").status_code == 200  # public
    with client(url) as c:
        r = c.post("/v1/audio/speech", content=b" " * (cap + 1), headers=json_headers)
        assert r.status_code == 413 and f"at most {cap}" in r.json()["error"]["message"]
        chunked = c.post("/v1/audio/speech", content=iter([b" " * 1024] * (cap // 1024 + 2)), headers=json_headers)
        assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "too_large"
        long_input = c.post("/v1/audio/speech", json=speech(input="x" * (MAX_INPUT_CHARS + 1)))
        assert long_input.status_code == 400 and "input" in long_input.json()["error"]["message"]
        assert c.post("/v1/audio/speech", json=speech()).status_code == 200


def busy(url: str) -> int:
    """Requests admitted, at the busiest API replica /health reached in a few calls (each lands on either)."""
    with client(url) as c:
        return max(c.get("/health").json()["busy"] for _ in range(8))


def test_clients_that_leave_early_give_their_places_back(server):
    """Twice the admission capacity of clients hang up: a third before any byte comes back, a third after the status
    line, a third after the first audio bytes. Every place is given back, and the API serves again."""
    url, cfg, _ = server
    host, port = url.split("//")[1].split(":")
    body = json.dumps(speech(input="hello there, how are you today")).encode()
    head = f"POST /v1/audio/speech HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    for k in range(2 * (cfg.limits.max_concurrent + cfg.limits.max_queue)):
        with socket.create_connection((host, int(port)), timeout=120) as sock:
            sock.sendall(head.encode() + body)
            if k % 3 >= 1:
                seen = sock.recv(64)  # the status line
                while k % 3 == 2 and b"\r\n\r\n" not in seen:
                    seen += sock.recv(4096)  # through the headers: audio bytes follow
    deadline = time.monotonic() + 120
    while busy(url) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert busy(url) == 0
    with client(url) as c:
        assert c.post("/v1/audio/speech", json=speech()).status_code == 200


def test_overload_answers_503_with_retry_after_and_keeps_serving(server):
    url, cfg, _ = server
    capacity = cfg.limits.max_concurrent + cfg.limits.max_queue  # per API replica

    async def burst():
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as c:
            n = cfg.api.num_replicas * capacity + 6
            return await asyncio.gather(*[c.post("/v1/audio/speech", json=speech()) for _ in range(n)])

    replies = asyncio.run(burst())
    codes = [r.status_code for r in replies]
    assert codes.count(200) >= capacity and 503 in codes, codes
    busy = next(r for r in replies if r.status_code == 503)
    assert busy.headers["retry-after"] == str(cfg.limits.retry_after_s) and "busy" in json.dumps(busy.json())
    with client(url) as c:
        assert c.post("/v1/audio/speech", json=speech()).status_code == 200
