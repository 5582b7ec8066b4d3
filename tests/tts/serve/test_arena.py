"""The blind A/B arena: contenders, signed pair tokens, and a vote cast in headless Chromium landing in SQLite."""

from __future__ import annotations

import base64
import random
import time

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.tts.serve.tiny_app import KEY
from tts.serve.arena import ArenaError, Pairing, contenders, model_label
from tts.serve.config import ArenaSettings, ServeConfig, VoiceSpec
from tts.serve.votes import VoteStore


def tamper(token: str) -> str:
    return token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]


def config(**arena) -> ServeConfig:
    voices = [VoiceSpec(name="alice", speaker="en_08", text="t"), VoiceSpec(name="bob", lora="/x")]
    return ServeConfig(model="runs/grpo_x", voices=voices, arena=ArenaSettings(**arena))


def test_contenders_are_the_served_model_with_each_preset_voice():
    assert model_label(config()) == "grpo_x"
    assert contenders(config()) == ["grpo_x/default", "grpo_x/alice", "grpo_x/bob"]
    assert contenders(config(contenders=["grpo_x/bob", "grpo_x/alice"])) == ["grpo_x/bob", "grpo_x/alice"]
    for bad in (["other/alice"], ["grpo_x/carol"], ["grpo_x"], ["grpo_x/bob", "grpo_x/bob"]):
        with pytest.raises(ValueError, match="arena.contenders"):
            contenders(config(contenders=bad))


def test_pair_tokens_hide_names_and_are_checked():
    pairing = Pairing(config())
    token = pairing.new("hello", random.Random(0))
    assert b"grpo_x" not in base64.urlsafe_b64decode(token) and b"hello" not in base64.urlsafe_b64decode(token)
    pair = pairing.open(token)
    assert pair["a"] != pair["b"] and {pair["a"], pair["b"]} <= set(pairing.names) and pair["text"] == "hello"
    assert 0 <= pair["seed"] < 2**31  # random per pair; both sides are sampled with it
    fixed = Pairing(config(seed=5))
    assert fixed.open(fixed.new("x"))["seed"] == 5
    sides = {tuple(sorted((p["a"], p["b"]))) for p in map(pairing.open, (pairing.new("x") for _ in range(40)))}
    assert len(sides) == 3  # every pair of the three contenders comes up
    for bad in (tamper(token), "garbage", "", token[:40]):
        with pytest.raises(ArenaError, match="unknown pair token") as exc:
            pairing.open(bad)
        assert exc.value.status == 404
    with pytest.raises(ArenaError, match="unknown pair token"):
        Pairing(config()).open(token)  # another replica with its own random key


def test_shared_secret_and_expiry():
    a, b = Pairing(config(secret="s3")), Pairing(config(secret="s3"))
    token = a.new("hi")
    assert b.open(token)["text"] == "hi"  # any replica with the key reads the pair
    assert time.time() < b.expiry(token) <= time.time() + config().arena.pair_ttl_s
    old = Pairing(config(secret="s3", pair_ttl_s=-1))
    with pytest.raises(ArenaError, match="expired") as exc:
        old.open(old.new("hi"))
    assert exc.value.status == 410


def test_one_contender_cannot_make_a_pair():
    with pytest.raises(ArenaError, match="needs two contenders") as exc:
        Pairing(ServeConfig(model="m")).new("hi")
    assert exc.value.status == 409


def auth() -> dict:
    return {"Authorization": f"Bearer {KEY}"}


@pytest.mark.slow
def test_arena_page_casts_a_blind_vote_into_sqlite(server, browser):
    url, cfg, _ = server
    browser.get(f"{url}/arena")
    browser.execute_script("localStorage.setItem('tts-key', arguments[0])", KEY)
    browser.get(f"{url}/arena")
    browser.find_element(By.ID, "annotator").send_keys("tester")
    text = browser.find_element(By.ID, "text")
    text.clear()
    text.send_keys("[happy] which one is nicer")
    browser.find_element(By.ID, "pair").click()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 60).until(lambda b: status.get_attribute("data-state") in ("ready", "error"))
    assert status.get_attribute("data-state") == "ready", browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "reveal").text == ""  # names hidden until the vote
    for side in "ab":  # both sides are playable WAVs
        duration = browser.execute_async_script(
            "const el = arguments[0], done = arguments[1];"
            "if (el.readyState >= 1) done(el.duration); else el.onloadedmetadata = () => done(el.duration);",
            browser.find_element(By.ID, f"audio-{side}"),
        )
        assert duration > 0, (side, status.text)
    before = len(VoteStore(cfg.arena.votes).all())
    browser.find_element(By.ID, "vote-b").click()
    WebDriverWait(browser, 30).until(lambda b: status.get_attribute("data-state") == "voted")
    vote = VoteStore(cfg.arena.votes).all()[-1]
    assert len(VoteStore(cfg.arena.votes).all()) == before + 1
    assert (vote.winner, vote.annotator, vote.text) == ("b", "tester", "[happy] which one is nicer")
    assert vote.model_a != vote.model_b and {vote.model_a, vote.model_b} <= set(contenders(cfg))
    reveal = browser.find_element(By.ID, "reveal").text
    assert reveal == f"A was {vote.model_a}, B was {vote.model_b}; your vote: b"


@pytest.mark.slow
def test_bad_arena_requests_get_clear_4xx_and_write_nothing(server):
    url, cfg, _ = server
    with httpx.Client(base_url=url, headers=auth(), timeout=60) as c:
        token = c.post("/v1/arena/pairs", json={"text": "hi there"}).json()["token"]
        before = len(VoteStore(cfg.arena.votes).all())
        cases = [
            ("/v1/arena/pairs", {"text": " "}, 400, "input is empty"),
            ("/v1/arena/pairs", {"text": "[dancing] hi"}, 400, "unknown markup tag"),
            ("/v1/arena/audio", {"token": "nope", "side": "a"}, 404, "unknown pair token"),
            ("/v1/arena/audio", {"token": token, "side": "c"}, 400, "side"),
            ("/v1/arena/votes", {"token": tamper(token), "winner": "a", "annotator": "x"}, 404, "unknown pair"),
            ("/v1/arena/votes", {"token": token, "winner": "a"}, 400, "annotator"),
            ("/v1/arena/votes", {"token": token, "winner": "a", "annotator": "  "}, 400, "annotator is empty"),
            ("/v1/arena/votes", {"token": token, "winner": "left", "annotator": "x"}, 400, "winner"),
        ]
        for path, body, status, needle in cases:
            r = c.post(path, json=body)
            assert r.status_code == status and needle in r.json()["error"]["message"], (path, body, r.text)
        assert len(VoteStore(cfg.arena.votes).all()) == before
        assert c.post("/v1/arena/votes", json={"token": token, "winner": "tie", "annotator": "x"}).status_code == 201
        again = c.post("/v1/arena/votes", json={"token": token, "winner": "a", "annotator": "x"})
        assert again.status_code == 409 and "already" in again.json()["error"]["message"]
        assert c.post("/v1/arena/pairs", json={"text": "hi"}, headers={"Authorization": "Bearer no"}).status_code == 401
    assert len(VoteStore(cfg.arena.votes).all()) == before + 1
    assert time.time() - VoteStore(cfg.arena.votes).all()[-1].created < 60
