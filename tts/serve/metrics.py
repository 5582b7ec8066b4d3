"""Serve metrics on the Ray dashboard (Prometheus): requests, time to first audio, real-time factor, errors."""

from __future__ import annotations

from ray.util.metrics import Counter, Histogram

LATENCY_S = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0]
RTF = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0]


class ServeMetrics:
    def __init__(self):
        self.requests = Counter("tts_requests", "speech requests by outcome", tag_keys=("route", "status"))
        self.errors = Counter("tts_errors", "rejected or failed requests by kind", tag_keys=("kind",))
        self.ttfa = Histogram("tts_time_to_first_audio_s", "request to first audio byte", LATENCY_S, ("stream",))
        self.rtf = Histogram("tts_real_time_factor", "synthesis seconds per audio second", RTF, ("stream",))
        self.audio = Counter("tts_audio_seconds", "audio seconds synthesised")

    def request(self, route: str, status: int) -> None:
        self.requests.inc(tags={"route": route, "status": str(status)})

    def error(self, kind: str) -> None:
        self.errors.inc(tags={"kind": kind})

    def finished(self, stream: bool, ttfa_s: float, total_s: float, audio_s: float) -> None:
        tags = {"stream": str(stream).lower()}
        self.ttfa.observe(ttfa_s, tags=tags)
        if audio_s > 0:
            self.rtf.observe(total_s / audio_s, tags=tags)
            self.audio.inc(audio_s)
