// Shared by the playground and the arena pages: API calls with the optional bearer key, errors in OpenAI's
// shape, streamed 16-bit PCM played through WebAudio as it arrives, and WAV files for download / <audio>.
"use strict";

const $ = (id) => document.getElementById(id);

function apiKey() {
  const input = $("key");
  if (input && input.value.trim()) localStorage.setItem("tts-key", input.value.trim());
  return localStorage.getItem("tts-key") || "";
}

// fetch() that throws Error(message of the server's JSON error) for non-2xx answers
async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.json !== undefined) {
    headers["content-type"] = "application/json";
    opts = { ...opts, method: opts.method || "POST", body: JSON.stringify(opts.json) };
  }
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  const r = await fetch(path, { ...opts, headers });
  if (!r.ok) {
    let message = `${r.status} ${r.statusText}`;
    try { message = `${r.status}: ${(await r.json()).error.message}`; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return r;
}

// Read a streamed audio/pcm body (16-bit little-endian mono); onSamples(Int16Array, bytesSoFar) per piece.
async function readPcm(response, onSamples) {
  const reader = response.body.getReader();
  let bytes = 0, odd = null;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return bytes;
    bytes += value.length;
    let data = value;
    if (odd !== null) { data = new Uint8Array(value.length + 1); data[0] = odd; data.set(value, 1); odd = null; }
    if (data.length % 2) { odd = data[data.length - 1]; data = data.subarray(0, data.length - 1); }
    if (data.length) onSamples(new Int16Array(data.slice().buffer), bytes);
  }
}

// Schedules PCM pieces back to back on one AudioContext; works without an audio device (then it only counts).
class PcmPlayer {
  constructor(sampleRate) {
    this.sampleRate = sampleRate;
    this.scheduled = 0; // seconds handed to WebAudio
    try { this.ctx = new AudioContext({ sampleRate }); } catch (e) { this.ctx = null; }
    this.at = this.ctx ? this.ctx.currentTime + 0.05 : 0;
  }
  async start() { if (this.ctx) await this.ctx.resume().catch(() => {}); }
  play(samples) {
    if (!this.ctx) return;
    const buf = this.ctx.createBuffer(1, samples.length, this.sampleRate);
    const ch = buf.getChannelData(0);
    for (let i = 0; i < samples.length; i++) ch[i] = samples[i] / 32768;
    const src = this.ctx.createBufferSource();
    src.buffer = buf;
    src.connect(this.ctx.destination);
    this.at = Math.max(this.at, this.ctx.currentTime);
    src.start(this.at);
    this.at += buf.duration;
    this.scheduled += buf.duration;
  }
  stop() { if (this.ctx) this.ctx.close().catch(() => {}); }
}

// A 16-bit mono WAV file of Int16Array pieces.
function wavBlob(pieces, sampleRate) {
  const n = pieces.reduce((k, p) => k + p.length, 0);
  const head = new DataView(new ArrayBuffer(44));
  const text = (at, s) => [...s].forEach((c, i) => head.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF"); head.setUint32(4, 36 + 2 * n, true); text(8, "WAVEfmt ");
  head.setUint32(16, 16, true); head.setUint16(20, 1, true); head.setUint16(22, 1, true);
  head.setUint32(24, sampleRate, true); head.setUint32(28, 2 * sampleRate, true);
  head.setUint16(32, 2, true); head.setUint16(34, 16, true); text(36, "data"); head.setUint32(40, 2 * n, true);
  return new Blob([head, ...pieces], { type: "audio/wav" });
}

function showError(error) {
  const el = $("error");
  el.textContent = error ? String(error.message || error) : "";
  el.hidden = !error;
}
