"""The HTTP API (OpenAI-compatible `POST /v1/audio/speech`, voices, health) and the Serve application graph.

    SpeechAPI (FastAPI ingress) --handle--> SpeechLMGeneration (stream of codes)
                                --handle--> CodecDecoding (chunk decode with context; voice encode)

Every request is validated before anything is generated: bad input gets a 4xx JSON error in OpenAI's shape
({"error": {"message", "type", "param", "code"}}) and costs the other requests nothing. A bounded admission queue
answers 503 with Retry-After under overload instead of piling requests up.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from starlette.exceptions import HTTPException

from tts.base.audio import AudioError, load_audio
from tts.base.cluster import init_ray
from tts.prompts import speech_request
from tts.serve.arena import ArenaError, Pairing, contenders, voice_of
from tts.serve.config import MAX_INPUT_CHARS, ServeConfig, with_secrets
from tts.serve.decoding import CodecDecoding
from tts.serve.formats import AudioEncoder, encode_whole, supported_formats
from tts.serve.generation import Sampling, SpeechLMGeneration, lora_voices
from tts.serve.guard import OWNER, Guard, GuardSettings, error_body
from tts.serve.markup import check_markup, model_tags
from tts.serve.metrics import ServeMetrics
from tts.serve.streaming import StreamingDecoder
from tts.serve.voices import (
    Voice,
    VoiceRegistry,
    VoiceStore,
    corpus_speaker,
    read_reference,
    render_reference,
)
from tts.serve.votes import VoteStore
from tts.speech_sampling import min_new_tokens
from tts.speechlm import open_speechlm

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"  # the playground and arena pages: plain HTML + JS, no build step
STATIC_FILES = {"common.js": "text/javascript", "pages.css": "text/css"}


class ApiError(HTTPException):
    """An HTTP error with OpenAI's error body; `kind` also labels the error metric."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None, headers: dict | None = None):
        super().__init__(status, message, headers)
        self.kind, self.param = kind, param


class VoiceRef(BaseModel):
    id: str


class SpeechRequest(BaseModel):
    """OpenAI's speech request plus optional fields (language, temperature, top_p, seed, stream)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    input: str = Field(..., max_length=MAX_INPUT_CHARS)
    voice: str | VoiceRef
    response_format: str = "mp3"
    speed: float = 1.0
    stream_format: Literal["audio"] = "audio"
    instructions: str | None = Field(None, description="not supported: put markup tags such as [happy] in input")
    language: str | None = Field(None, description="language code of `input` (GET /v1/models lists the model's)")
    temperature: float | None = Field(None, gt=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, lt=2**63)
    stream: bool = Field(True, description="stream the audio body as it is generated (false: send it whole)")


class PairRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., description="what both contenders will say (markup tags allowed)")


class ArenaAudioRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str
    side: Literal["a", "b"]


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str
    winner: Literal["a", "b", "tie"]
    annotator: str = Field(..., max_length=100)


api = FastAPI(
    title="tts-align speech API",
    description="Streaming speech synthesis with a SpeechLM and an audio codec; OpenAI-compatible.",
    version="0.1.0",
)


@api.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    message = f"{where}: {first.get('msg', 'invalid value')}"
    if first.get("type") == "json_invalid":
        message = f"malformed JSON body: {first.get('ctx', {}).get('error', 'cannot parse')}"
    _metrics().error("validation")
    return JSONResponse(error_body(message, "invalid_value", where), status_code=400)


@api.exception_handler(HTTPException)
async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    kind = getattr(exc, "kind", "http_error")
    _metrics().error(kind)
    return JSONResponse(error_body(str(exc.detail), kind, getattr(exc, "param", None)), exc.status_code, exc.headers)


_METRICS: ServeMetrics | None = None
_GUARD: GuardSettings | None = None  # set by this process's SpeechAPI replica: the key and body caps


def _metrics() -> ServeMetrics:
    global _METRICS
    if _METRICS is None:
        _METRICS = ServeMetrics()
    return _METRICS


api.add_middleware(Guard, settings=lambda: _GUARD, on_error=lambda kind: _metrics().error(kind))


def _stretch(wave: np.ndarray, speed: float, sr: int) -> np.ndarray:
    """Time-stretch a chunk for OpenAI's `speed` (pitch kept); chunks end in silence, so seams stay clean."""
    if speed == 1.0:
        return wave
    import librosa

    return librosa.effects.time_stretch(wave, rate=speed, n_fft=min(1024, 1 << (len(wave).bit_length() - 1)))


class Ticket:
    """One admitted request's place in the API's admission count, given back exactly once however the request
    ends: streamed to the end, failed, or its client gone before or after the first byte."""

    def __init__(self, api: SpeechAPI):
        self.api: SpeechAPI | None = api

    def release(self) -> None:
        if self.api is not None:
            self.api.admitted -= 1
            self.api = None


class AdmittedStream(StreamingResponse):
    """A streaming response that gives its ticket back when it ends, whatever ends it (a client that disconnects
    raises out of Starlette's response before any body generator runs its `finally`); if the response is dropped
    without ever being sent, the ticket goes back when it is collected."""

    def __init__(self, content: AsyncIterator[bytes], ticket: Ticket, media_type: str):
        super().__init__(content, media_type=media_type)
        self.ticket = ticket
        weakref.finalize(self, ticket.release)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.ticket.release()


@serve.ingress(api)
class SpeechAPI:
    """The ingress deployment (options from `ServeConfig.api`)."""

    def __init__(self, cfg: ServeConfig, model_dir: str, generation: Any, decoding: Any, registry: Any):
        from transformers import AutoTokenizer

        from tts.base.layout import TokenLayout

        global _GUARD
        self.cfg, self.generation, self.decoding, self.registry = cfg, generation, decoding, registry
        lim = cfg.limits
        _GUARD = GuardSettings(tuple(cfg.api_keys), lim.max_body_bytes, lim.max_upload_bytes)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.layout = TokenLayout.load(model_dir)
        self.voices = VoiceStore()  # presets; uploaded voices live in the registry, shared by every replica
        self.voices.add(Voice(cfg.default_voice, cfg.default_voice, "default"))
        self.slots = asyncio.Semaphore(cfg.limits.max_concurrent)
        self.admitted = 0  # running + waiting for a slot
        self.ready_lock = asyncio.Lock()
        self.codec: dict | None = None
        self.metrics = _metrics()
        self.pairing = Pairing(cfg)
        self.votes: VoteStore | None = None  # opened on the first vote

    async def _ready(self) -> dict:
        """Codec facts and preset voices, fetched from the other deployments on first use."""
        async with self.ready_lock:
            if self.codec is None:
                self.codec = await self.decoding.info.remote()
                loras = lora_voices(self.cfg)
                for spec in self.cfg.voices:
                    codes = None
                    if spec.audio:
                        wave, sr = load_audio(spec.audio)  # a config value, never a request value
                        codes = await self.decoding.encode.remote(wave, sr)
                    elif spec.speaker:
                        wave = render_reference(spec.speaker, spec.text, self.codec["sample_rate"])
                        codes = await self.decoding.encode.remote(wave, self.codec["sample_rate"])
                    kind = "lora" if spec.name in loras else "clone"
                    self.voices.add(Voice(spec.name, spec.name, kind, spec.text, codes, lora=spec.name in loras))
        return self.codec

    # -- routes ------------------------------------------------------------------------------------------------
    @api.get("/", include_in_schema=False)
    async def playground(self) -> FileResponse:
        return FileResponse(STATIC / "playground.html")

    @api.get("/arena", include_in_schema=False)
    async def arena(self) -> FileResponse:
        return FileResponse(STATIC / "arena.html")

    @api.get("/static/{name}", include_in_schema=False)
    async def static(self, name: str) -> FileResponse:
        if name not in STATIC_FILES:  # a fixed list: no request value reaches the file system
            raise ApiError(404, f"no static file {name!r}", "not_found")
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name])

    @api.get("/health")
    async def health(self) -> dict:
        codec = await self._ready()
        gen = await self.generation.info.remote()
        return {"status": "ok", "backend": gen["backend"], "sample_rate": codec["sample_rate"], "busy": self.admitted}

    @api.get("/v1/models")
    async def models(self) -> dict:
        facts = {"languages": self.cfg.languages, "markup_tags": model_tags(self.layout)}
        return {"object": "list", "data": [{"id": m, "object": "model", **facts} for m in self.cfg.model_names]}

    @api.get("/v1/voices")
    async def list_voices(self, request: Request) -> dict:
        """The preset voices and the voices this key uploaded."""
        await self._ready()
        mine = await self.registry.list.remote(request.scope.get(OWNER))
        return {"object": "list", "data": [v.public() for v in self.voices.list() + mine]}

    @api.post("/v1/voices", status_code=201)
    async def create_voice(
        self,
        request: Request,
        file: UploadFile = File(..., description="reference audio (wav, flac, ogg, mp3), 1-30 s"),
        text: str = Form(..., description="transcript of the reference audio"),
        name: str = Form("", max_length=100),
    ) -> dict:
        """Instant cloning: the reference is encoded once and its codes cached under a new voice id."""
        lim = self.cfg.limits
        data = await file.read(lim.max_upload_bytes + 1)
        if len(data) > lim.max_upload_bytes:
            raise ApiError(413, f"upload larger than {lim.max_upload_bytes} bytes", "too_large", "file")
        text = text.strip()
        if not text or len(text) > lim.max_input_chars:
            raise ApiError(400, f"text must be 1 to {lim.max_input_chars} characters", "invalid_value", "text")
        try:
            wave, sr = read_reference(data, lim.min_reference_s, lim.max_reference_s)
        except AudioError as exc:
            raise ApiError(400, str(exc), "invalid_audio", "file") from None
        await self._ready()
        try:
            codes = await self.decoding.encode.remote(wave, sr)
        except AudioError as exc:
            raise ApiError(400, str(exc), "invalid_audio", "file") from None
        name = name.strip() or (file.filename or "voice")[:100]
        voice = await self.registry.create.remote(request.scope.get(OWNER), name, text, codes)
        if isinstance(voice, str):
            raise ApiError(429, voice, "too_many_voices")
        return voice.public()

    @api.delete("/v1/voices/{voice_id}")
    async def delete_voice(self, voice_id: str, request: Request) -> dict:
        if not await self.registry.delete.remote(request.scope.get(OWNER), voice_id):
            raise ApiError(404, f"no uploaded voice {voice_id!r}", "voice_not_found", "voice_id")
        return {"id": voice_id, "object": "voice", "deleted": True}

    @api.post("/v1/audio/speech")
    async def speech(self, body: SpeechRequest, request: Request) -> StreamingResponse:
        return await self._speak(body, request.scope.get(OWNER))

    @api.post("/v1/arena/pairs", status_code=201)
    async def arena_pair(self, body: PairRequest) -> dict:
        """A blind pair for `text`: an opaque token; the contenders' names come back with the vote."""
        await self._ready()
        request = self._arena_request(body.text, self.cfg.default_voice)
        self._prompt(request, await self._voice(request, None))  # speech's checks, before any audio
        return {"token": self._arena(self.pairing.new, body.text.strip())}

    @api.post("/v1/arena/audio")
    async def arena_audio(self, body: ArenaAudioRequest) -> StreamingResponse:
        """Side a or b of a pair as streamed 16-bit PCM (sample rate in /health)."""
        pair = self._arena(self.pairing.open, body.token)
        return await self._speak(self._arena_request(pair["text"], voice_of(pair[body.side]), pair["seed"]), None)

    @api.post("/v1/arena/votes", status_code=201)
    async def arena_vote(self, body: VoteRequest) -> dict:
        """Record a vote (once per pair) in the arena's SQLite file and reveal the contenders."""
        if not body.annotator.strip():
            raise ApiError(400, "annotator is empty: say who is voting", "invalid_value", "annotator")
        pair = self._arena(self.pairing.open, body.token)
        if not await self.registry.spend.remote(pair["nonce"], self.pairing.expiry(body.token)):
            raise ApiError(409, "this pair has been voted on already", "arena")
        self.votes = self.votes or VoteStore(self.cfg.arena.votes)
        vote = self.votes.add(pair["a"], pair["b"], body.winner, body.annotator, pair["text"])
        return {"id": vote.id, "model_a": vote.model_a, "model_b": vote.model_b, "winner": vote.winner}

    # -- helpers -----------------------------------------------------------------------------------------------
    def _arena(self, call, arg):
        try:
            return call(arg)
        except ArenaError as exc:
            raise ApiError(exc.status, str(exc), "arena") from None

    def _arena_request(self, text: str, voice: str, seed: int | None = None) -> SpeechRequest:
        return SpeechRequest(model=self.cfg.model_names[0], input=text, voice=voice, response_format="pcm", seed=seed)

    async def _voice(self, body: SpeechRequest, owner: str | None) -> Voice:
        """A preset voice, or one the request's key uploaded (any replica: the registry)."""
        voice_id = body.voice if isinstance(body.voice, str) else body.voice.id
        voice = self.voices.get(voice_id)
        if voice is None and voice_id.startswith("voice_"):
            voice = await self.registry.get.remote(owner, voice_id)
        if voice is None:
            names = [v.id for v in self.voices.list()]
            message = f"unknown voice {voice_id!r}; presets: {names}, or a voice you uploaded (GET /v1/voices)"
            raise ApiError(404, message, "voice_not_found", "voice")
        return voice

    async def _speak(self, body: SpeechRequest, owner: str | None) -> StreamingResponse:
        started = time.perf_counter()
        codec = await self._ready()
        voice = await self._voice(body, owner)
        prompt, sampling = self._prompt(body, voice)
        if body.response_format not in supported_formats():
            raise ApiError(
                400,
                f"response_format {body.response_format!r} is not supported; use one of {supported_formats()}",
                "unsupported_format",
                "response_format",
            )
        encoder = AudioEncoder(body.response_format, codec["sample_rate"], watermark=self.cfg.watermark)
        ticket = self._admit()
        audio = self._synthesize(prompt, voice, sampling, body.stream, body.speed, codec)
        body_ = self._respond(audio, encoder, body.stream, started, codec["sample_rate"])
        return AdmittedStream(body_, ticket, media_type=encoder.media_type)

    def _prompt(self, body: SpeechRequest, voice: Voice) -> tuple[list[int], Sampling]:
        cfg, lim = self.cfg, self.cfg.limits
        if body.model not in cfg.model_names:
            names = cfg.model_names
            raise ApiError(404, f"unknown model {body.model!r}; available: {names}", "model_not_found", "model")
        if not body.input.strip():
            raise ApiError(400, "input is empty", "invalid_value", "input")
        if len(body.input) > lim.max_input_chars:
            raise ApiError(
                400, f"input has {len(body.input)} characters; at most {lim.max_input_chars}", "too_long", "input"
            )
        if not lim.min_speed <= body.speed <= lim.max_speed:
            raise ApiError(400, f"speed must be in [{lim.min_speed}, {lim.max_speed}]", "invalid_value", "speed")
        if body.instructions:
            message = "instructions are not supported; put markup tags such as [happy] in input"
            raise ApiError(400, message, "unsupported", "instructions")
        # no language token in the prompt (as in the paper, the text carries its language): a language the model
        # never learnt is refused instead of synthesised as noise
        if body.language is not None and body.language not in cfg.languages:
            message = f"language {body.language!r} is not supported by this model; supported: {cfg.languages}"
            raise ApiError(400, message, "unsupported_language", "language")
        try:
            check_markup(self.layout, body.input)  # each known tag becomes its one special token
        except ValueError as exc:
            raise ApiError(400, str(exc), "unknown_markup", "input") from None
        try:  # through the model's front end: a text its phonemiser finds nothing to say in is the client's
            ref = (voice.text, voice.codes) if voice.codes is not None else (None, None)
            req = speech_request(self.tokenizer, self.layout, body.input, *ref)
        except ValueError as exc:
            raise ApiError(400, str(exc), "invalid_value", "input") from None
        prompt = req.input_ids
        room = cfg.generation.max_model_len - len(prompt)
        if room < 1:
            raise ApiError(400, f"input too long for the model ({len(prompt)} prompt tokens)", "too_long", "input")
        gen = cfg.generation
        most = min(gen.max_new_tokens, room)
        sampling = Sampling(
            temperature=body.temperature if body.temperature is not None else gen.temperature,
            top_p=body.top_p if body.top_p is not None else gen.top_p,
            max_tokens=most,
            seed=body.seed,
            min_tokens=min_new_tokens(body.input, gen.min_codes_per_char, most),
            words=req.words,
        )
        return prompt, sampling

    def _admit(self) -> Ticket:
        lim = self.cfg.limits
        if self.admitted >= lim.max_concurrent + lim.max_queue:
            raise ApiError(
                503, "server busy: too many requests in flight, retry later", "overloaded",
                headers={"Retry-After": str(lim.retry_after_s)},
            )  # fmt: skip
        self.admitted += 1
        return Ticket(self)

    async def _synthesize(
        self, prompt: list[int], voice: Voice, sampling: Sampling, stream: bool, speed: float, codec: dict
    ) -> AsyncIterator[np.ndarray]:
        """Audio chunks of one request; holds one of the `max_concurrent` slots while generating."""
        async with self.slots:
            dec = StreamingDecoder(self.cfg.streaming, codec["hop_length"], codec["sample_rate"], voice.codes)
            gen = self.generation.options(stream=True).generate.remote(
                prompt, sampling, voice.id if voice.lora else None
            )
            async for codes in gen:
                dec.push(codes)
                while stream and (job := dec.next_decode()) is not None:
                    out = dec.take(job, await self.decoding.decode.remote(job.codes, job.context))
                    if out.size:
                        yield _stretch(out, speed, codec["sample_rate"])
            if (job := dec.next_decode(final=True)) is not None:
                out = dec.take(job, await self.decoding.decode.remote(job.codes, job.context))
                yield _stretch(out, speed, codec["sample_rate"])

    async def _respond(
        self, audio: AsyncIterator[np.ndarray], encoder: AudioEncoder, stream: bool, started: float, sr: int
    ) -> AsyncIterator[bytes]:
        first, seconds, status = None, 0.0, 200
        try:
            if stream:
                async for chunk in audio:
                    seconds += len(chunk) / sr
                    data = encoder.add(chunk)
                    if data:
                        first = first or time.perf_counter()
                        yield data
                yield encoder.close()
            else:  # the whole file at once, its header with the exact sizes
                chunks = [chunk async for chunk in audio]
                wave = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
                seconds = len(wave) / sr
                yield encode_whole(encoder.fmt, wave, sr, encoder.watermark)
            first = first or time.perf_counter()
        except Exception:  # after the first byte the status is sent: log, count and end the body
            log.exception("synthesis failed")
            self.metrics.error("synthesis_failed")
            status = 500
            raise
        finally:
            self.metrics.request("speech", status)
            if first is not None and status == 200:
                self.metrics.finished(stream, first - started, time.perf_counter() - started, seconds)


def build_app(cfg: ServeConfig) -> serve.Application:
    """The Serve application graph for `cfg` (checkpoint paths and secrets are checked here, before any replica
    starts; the key and arena secret are resolved here: tts.serve.config.with_secrets)."""
    cfg = with_secrets(cfg)
    if cfg.arena.secret is None:  # one key for every API replica of this deployment (tokens end with it)
        cfg = replace(cfg, arena=replace(cfg.arena, secret=secrets.token_urlsafe(32)))
    model = open_speechlm(cfg.model, cfg.codec)  # the SpeechLM and its codec, checked together
    model_dir, codec_dir = str(model.directory), str(model.codec.directory)
    for voice in cfg.voices:
        if voice.speaker:
            corpus_speaker(voice.speaker)
    contenders(cfg)
    generation = serve.deployment(SpeechLMGeneration, name="SpeechLMGeneration").options(
        **cfg.generation.deployment.options()
    )
    decoding = serve.deployment(CodecDecoding, name="CodecDecoding").options(**cfg.decoding.options())
    ingress = serve.deployment(SpeechAPI, name="SpeechAPI").options(**cfg.api.options())
    # one registry replica: the single place uploaded voices and spent arena tokens live (num_cpus 0: bookkeeping)
    registry = serve.deployment(VoiceRegistry, name="VoiceRegistry", num_replicas=1, ray_actor_options={"num_cpus": 0})
    voices = registry.bind(cfg.voices_dir, cfg.limits.max_voices_per_key)
    return ingress.bind(cfg, model_dir, generation.bind(cfg, model_dir), decoding.bind(codec_dir), voices)


def start(cfg: ServeConfig, **ray_init: Any) -> str:
    """Deploy the app for `cfg` on Ray Serve at cfg.host:cfg.port (joining RAY_ADDRESS's cluster, else a local
    Ray started with `ray_init`); returns the base URL. Checkpoint paths are checked before Ray starts."""

    app = build_app(cfg)
    init_ray(**ray_init)
    serve.start(http_options={"host": cfg.host, "port": cfg.port})
    serve.run(app, name=cfg.app_name, route_prefix="/")
    return f"http://{cfg.host}:{cfg.port}"


def app_builder(args: dict[str, Any]) -> serve.Application:
    """`serve run` / `serve deploy` entry: args {config: path to a ServeConfig YAML, overrides: [key=value]}."""
    from tts.base.config import load_config

    return build_app(load_config(ServeConfig, args.get("config"), list(args.get("overrides", []))))
