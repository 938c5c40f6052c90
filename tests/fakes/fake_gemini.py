"""A fake Gemini REST endpoint on 127.0.0.1, for tests and benchmarks.

The real google-genai client talks to it over HTTP once `GOOGLE_GEMINI_BASE_URL` points
at `fake.base_url`. It serves `POST /{api_version}/models/{model}:generateContent` (3.6.1
sends `v1` by default, `v1beta` with GOOGLE_GENAI_API_VERSION=beta; both are accepted) and
answers in the REST shape the SDK parses (candidates[].content.parts[].text,
finishReason, usageMetadata, promptFeedback; errors as {"error": {code, status, details}}).

`:embedContent` and `:batchEmbedContents` answer deterministic vectors
(`tests.fakes.gemini_embeddings`), counted in `embed_calls` / `embedded_texts`.

`:streamGenerateContent?alt=sse` answers the same text as server-sent events of
`stream_chunk_chars` characters each. A streamed call takes the same `latency_s` in all:
the first event comes after `first_event_fraction` of it, the last one at `latency_s`, the
others evenly in between (a model's time to first token, then its writing speed).

    async with FakeGemini(lambda body: {"intent": "billing_inquiry"}, rpm=60) as fake:
        fake.fail_next([429, 503, "hang"])
        ...
        assert fake.max_in_flight <= 3

A responder returning a `str` answers that text, a `dict` answers it as JSON text, and a
`RawResponse` is sent verbatim. Run it alone for a benchmark of a separate process:
`python -m tests.fakes.fake_gemini --port 8089 --rpm 600 --latency 0.2`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.gemini_embeddings import embed_answer
from tests.fakes.gemini_limits import CHARS_PER_TOKEN, PrefixCache, SlidingQuota
from tests.fakes.gemini_sse import event_fraction, stream_events

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}  # fmt: skip
_FAULT_KINDS = {"hang", "truncated_json", "empty_candidates", "safety_block", "prompt_blocked",
                "disconnect", "unfinished_stream"}  # fmt: skip


@dataclass(frozen=True)
class RawResponse:
    """A response body sent exactly as given (for shapes the helpers do not build)."""

    body: dict[str, Any]
    status: int = 200


@dataclass(frozen=True)
class Fault:
    """One scripted failure: an HTTP status or a kind from `_FAULT_KINDS`."""

    kind: int | str
    retry_delay_s: float | None = None  # for 429: overrides the fake's retry_delay_s


@dataclass(frozen=True)
class ReceivedRequest:
    """What one call sent, for assertions (the API key itself is never kept)."""

    api_version: str
    model: str
    body: dict[str, Any]
    received_at: float
    had_api_key: bool


Responder = Callable[[dict[str, Any]], "dict[str, Any] | str | RawResponse"]


def prompt_text(body: dict[str, Any]) -> str:
    """System instruction then contents, concatenated: what implicit caching keys on."""
    blocks = [body.get("systemInstruction") or {}, *body.get("contents", [])]
    return "".join(part.get("text", "") for block in blocks for part in block.get("parts", []))


def default_responder(body: dict[str, Any]) -> str:
    """`{}` in JSON mode, a short text otherwise."""
    config = body.get("generationConfig") or {}
    return "{}" if config.get("responseMimeType") == "application/json" else "fake answer"


class FakeGemini:
    """A local generateContent server with latency, quota, faults, caching and counters."""

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency_s: float = 0.0,
        rpm: int | None = None,
        window_s: float = 60.0,
        retry_delay_s: float = 0.3,
        hang_s: float = 30.0,
        cache_min_tokens: int = 1024,
        stream_chunk_chars: int = 100,
        first_event_fraction: float = 0.3,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.responder: Responder = responder or default_responder
        self.latency_s = latency_s
        self.retry_delay_s = retry_delay_s
        self.hang_s = hang_s
        self.stream_chunk_chars = stream_chunk_chars
        self.first_event_fraction = first_event_fraction
        self.quota = SlidingQuota(rpm, window_s) if rpm else None
        self.cache = PrefixCache(min_tokens=cache_min_tokens)
        self.requests: list[ReceivedRequest] = []
        self.calls = 0
        self.streamed = 0
        self.stream_ends: list[float] = []  # when each streamed answer's last event went out
        self.rate_limited = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.cached_tokens_served = 0
        self.embed_calls = 0  # embedContent / batchEmbedContents requests
        self.embedded_texts = 0
        self.embed_bodies: list[dict[str, Any]] = []
        self._faults: deque[Fault] = deque()
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def fail_next(self, faults: Iterable[int | str | Fault]) -> None:
        """Queue failures for the next calls, in order (one per call)."""
        for fault in faults:
            fault = fault if isinstance(fault, Fault) else Fault(fault)
            if isinstance(fault.kind, str) and fault.kind not in _FAULT_KINDS:
                raise ValueError(f"unknown fault {fault.kind!r}")
            self._faults.append(fault)

    async def __aenter__(self) -> FakeGemini:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on a free port (or the given one) and set `base_url`."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{version}/models/{action}", self._handle)
        # Counters over HTTP, for benchmarks that run the fake in a separate process.
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_post("/_fake/reset", self._reset)
        # handler_cancellation: a "hang" ends when the client gives up and disconnects.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        await web.SockSite(self._runner, sock).start()
        host, port = sock.getsockname()[:2]
        self.base_url = f"http://{host}:{port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stats(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "streamed": self.streamed,
            "rate_limited": self.rate_limited,
            "max_in_flight": self.max_in_flight,
            "cached_tokens": self.cached_tokens_served,
        }

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset(self, request: web.Request) -> web.Response:
        self.calls = self.streamed = self.rate_limited = self.max_in_flight = 0
        self.cached_tokens_served = 0
        self.requests.clear()
        return web.json_response(self.stats())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["action"].partition(":")
        if method in ("embedContent", "batchEmbedContents"):
            return await self._embed(request, model, method)
        if method not in ("generateContent", "streamGenerateContent"):
            return _error(404, f"unsupported method {method!r}")
        stream = method == "streamGenerateContent"
        if stream and request.query.get("alt") != "sse":
            return _error(400, "this fake streams server-sent events only (alt=sse)")
        body = await request.json()
        self._record(request, model, body)
        self.streamed += stream
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, model, body, stream)
        finally:
            self.in_flight -= 1

    async def _embed(self, request: web.Request, model: str, method: str) -> web.Response:
        """Embedding calls: counted apart from generation; scripted faults apply to them."""
        body = await request.json()
        self.embed_calls += 1
        self.embed_bodies.append(body)
        if not request.headers.get("x-goog-api-key"):
            return _error(401, "API key not valid. Please pass a valid API key.")
        fault = self._faults.popleft() if self._faults else None
        if fault is not None and isinstance(fault.kind, int):
            return self._status(fault.kind, fault.retry_delay_s or self.retry_delay_s)
        answer, texts = embed_answer(method, body)
        self.embedded_texts += texts
        return web.json_response(answer)

    def _record(self, request: web.Request, model: str, body: dict[str, Any]) -> None:
        self.calls += 1
        self.requests.append(
            ReceivedRequest(
                api_version=request.match_info["version"],
                model=model,
                body=body,
                received_at=time.monotonic(),
                had_api_key=bool(request.headers.get("x-goog-api-key")),
            )
        )

    async def _answer(
        self, request: web.Request, model: str, body: dict[str, Any], stream: bool
    ) -> web.StreamResponse:
        if not request.headers.get("x-goog-api-key"):
            return _error(401, "API key not valid. Please pass a valid API key.")
        fault = self._faults.popleft() if self._faults else None
        if fault is not None and isinstance(fault.kind, int):
            return self._status(fault.kind, fault.retry_delay_s or self.retry_delay_s)
        if self.quota is not None and (wait := self.quota.admit(time.monotonic())) is not None:
            return self._status(429, wait)
        kind = fault.kind if fault is not None and isinstance(fault.kind, str) else None
        if kind == "hang":
            await asyncio.sleep(self.hang_s)
        if stream:
            return await self._stream(request, model, body, kind)
        await asyncio.sleep(self.latency_s)
        if fault is not None and fault.kind == "disconnect":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        payload = self._payload(model, body, kind)
        if isinstance(payload, RawResponse):
            return web.json_response(payload.body, status=payload.status)
        text = json.dumps(payload)
        if fault is not None and fault.kind == "truncated_json":
            text = text[: len(text) // 2]
        return web.Response(text=text, content_type="application/json")

    async def _stream(
        self, request: web.Request, model: str, body: dict[str, Any], kind: int | str | None
    ) -> web.StreamResponse:
        """The answer as server-sent events over `latency_s`; faults strike mid-stream.

        "disconnect" closes the connection after half the events, "truncated_json" cuts
        the last event's JSON in half, "unfinished_stream" ends the response cleanly after
        half the events (no finish reason): all after some text has already been sent.
        """
        text_fault = kind if kind in ("disconnect", "truncated_json", "unfinished_stream") else None
        payload = self._payload(model, body, None if text_fault or kind is None else str(kind))
        if isinstance(payload, RawResponse) and payload.status != 200:
            await asyncio.sleep(self.latency_s)
            return web.json_response(payload.body, status=payload.status)
        events = stream_events(
            payload.body if isinstance(payload, RawResponse) else payload, self.stream_chunk_chars
        )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        loop = asyncio.get_running_loop()
        started = loop.time()
        for index, event in enumerate(events):
            at = self.latency_s * event_fraction(index, len(events), self.first_event_fraction)
            await asyncio.sleep(max(0.0, started + at - loop.time()))
            if not response.prepared:
                await response.prepare(request)
            data = json.dumps(event)
            if index == len(events) - 1 and text_fault == "truncated_json":
                data = data[: len(data) // 2]
            if text_fault == "unfinished_stream" and index >= max(1, len(events) // 2):
                break
            if text_fault == "disconnect" and index >= max(1, len(events) // 2):
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write(f"data: {data}\r\n\r\n".encode())
        self.stream_ends.append(time.monotonic())
        await response.write_eof()
        return response

    def _status(self, status: int, retry_delay_s: float) -> web.Response:
        """An error answer; a 429 says, like Google's, how long to wait."""
        details = []
        if status == 429:
            self.rate_limited += 1
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{max(retry_delay_s, 0.001):.3f}s",
                }
            ]
        return _error(status, f"fake {status}", details)

    def _payload(
        self, model: str, body: dict[str, Any], kind: str | None
    ) -> dict[str, Any] | RawResponse:
        prompt = prompt_text(body)
        cached = self.cache.cached_tokens(model, prompt, time.monotonic())
        self.cached_tokens_served += cached
        if kind in ("empty_candidates", "prompt_blocked"):
            answer = {"candidates": [], "usageMetadata": _usage(prompt, "", cached)}
            if kind == "prompt_blocked":
                answer["promptFeedback"] = {"blockReason": "SAFETY"}
            return answer
        if kind == "safety_block":
            candidate = {"finishReason": "SAFETY", "index": 0, "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
            ]}  # fmt: skip
            return {"candidates": [candidate], "usageMetadata": _usage(prompt, "", cached)}
        scripted = self.responder(body)
        if isinstance(scripted, RawResponse):
            return scripted
        text = scripted if isinstance(scripted, str) else json.dumps(scripted)
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": text}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": _usage(prompt, text, cached),
            "modelVersion": model,
            "responseId": f"fake-{self.calls}",
        }


def _usage(prompt: str, answer: str, cached: int) -> dict[str, int]:
    prompt_tokens, answer_tokens = len(prompt) // CHARS_PER_TOKEN, len(answer) // CHARS_PER_TOKEN
    usage = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": answer_tokens,
        "totalTokenCount": prompt_tokens + answer_tokens,
    }
    if cached:
        usage["cachedContentTokenCount"] = cached
    return usage


def _error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> web.Response:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)


async def _serve(args: argparse.Namespace) -> None:
    async with FakeGemini(latency_s=args.latency, rpm=args.rpm, port=args.port) as fake:
        print(f"GOOGLE_GEMINI_BASE_URL={fake.base_url}", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    """Serve until interrupted, for benchmarks that run the bot in another process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rpm", type=int, default=None, help="requests per sliding minute")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call")
    try:
        asyncio.run(_serve(parser.parse_args()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
