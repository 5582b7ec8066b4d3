"""The playground page in headless Chromium: tag buttons, voice upload and pick, streamed audio, WAV download."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.tts.serve.codecs import bursts
from tests.tts.serve.tiny_app import KEY

pytestmark = pytest.mark.slow

BLOB_BYTES = """const done = arguments[arguments.length - 1];
fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => {
  let s = ""; const u = new Uint8Array(b);
  for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
  done(btoa(s));
});"""


def state(browser) -> str:
    return browser.find_element(By.ID, "status").get_attribute("data-state")


def wait_for(browser, states: set[str], seconds: float = 60) -> str:
    WebDriverWait(browser, seconds).until(lambda b: state(b) in states)
    return state(browser)


def test_playground_streams_audio_with_an_uploaded_voice_and_offers_the_wav(server, browser, tmp_path):
    url, cfg, _ = server
    browser.get(f"{url}/")
    browser.execute_script("localStorage.setItem('tts-key', arguments[0])", KEY)
    browser.get(f"{url}/")  # the key is read on load, as a returning user's would be
    wait_for(browser, {"ready"})
    assert browser.find_element(By.ID, "error").get_attribute("hidden")
    voices = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#voice option")]
    assert voices[:3] == ["default", "alice", "bob"]

    ref = tmp_path / "ref.wav"
    sf.write(ref, bursts(2.0, seed=5), 16000)
    browser.find_element(By.ID, "ref-file").send_keys(str(ref))
    browser.find_element(By.ID, "ref-text").send_keys("a reference")
    browser.find_element(By.ID, "ref-name").send_keys("mine")
    browser.find_element(By.ID, "upload").click()
    wait_for(browser, {"uploaded"})
    picked = browser.find_element(By.ID, "voice").get_attribute("value")
    assert picked.startswith("voice_")

    text = browser.find_element(By.ID, "text")
    text.clear()
    text.send_keys("hello ")
    browser.find_element(By.XPATH, "//div[@id='tags']/button[text()='[laugh]']").click()
    text.send_keys("there")
    assert text.get_attribute("value") == "hello [laugh] there"
    browser.find_element(By.ID, "seed").send_keys("3")
    browser.find_element(By.ID, "speak").click()
    assert wait_for(browser, {"done", "error"}) == "done", browser.find_element(By.ID, "error").text

    status = browser.find_element(By.ID, "status")
    received, seconds = int(status.get_attribute("data-bytes")), float(status.get_attribute("data-seconds"))
    assert received > 0 and seconds > 0 and received == round(seconds * 16000) * 2
    assert float(status.get_attribute("data-scheduled")) == pytest.approx(seconds, abs=1e-3)  # played via WebAudio
    link = browser.find_element(By.ID, "download")
    wav = base64.b64decode(browser.execute_async_script(BLOB_BYTES, link.get_attribute("href")))
    audio, sr = sf.read(io.BytesIO(wav), dtype="int16")
    assert sr == 16000 and len(audio) == received // 2 and np.abs(audio).max() > 0


def test_playground_shows_server_errors(server, browser):
    url, *_ = server
    browser.get(f"{url}/")
    browser.execute_script("localStorage.setItem('tts-key', arguments[0])", KEY)
    browser.get(f"{url}/")
    wait_for(browser, {"ready"})
    browser.find_element(By.ID, "text").clear()
    browser.find_element(By.ID, "text").send_keys("[dancing] hi")
    browser.find_element(By.ID, "speak").click()
    assert wait_for(browser, {"done", "error"}) == "error"
    assert "400: unknown markup tag [dancing]" in browser.find_element(By.ID, "error").text
