"""Gemini behind the `LLM` protocol, using google-genai's async client.

This module only adapts: it builds the request, reads the answer and classifies failures.
Limits, retries and deadlines are the `CallGate`'s (pipelines.llm.reliability).

Notes on google-genai 3.6.1 that shape this adapter:
- The endpoint comes from `GOOGLE_GEMINI_BASE_URL` when set (google/genai/_base_url.py,
  read in `Client.__init__`), so no base URL is passed here; the request path is
  `{base}/{api_version}/models/{model}:generateContent`.
- `HttpOptions.timeout` is in milliseconds; it becomes aiohttp's total timeout and the
  `X-Server-Timeout` header.
- The SDK retries with its own tenacity loop when `HttpOptions.retry_options` is set and,
  when it is NOT set, silently retries aiohttp connection errors once after sleeping
  1-10 s. `HttpRetryOptions(attempts=1)` turns both off: the gate is the only retry layer.
- `response_schema=<pydantic model>` is converted to Gemini's OpenAPI subset and rejects
  common pydantic output (e.g. `additionalProperties` from `dict` fields) in Gemini API
  mode, so the model's JSON Schema is sent as `response_json_schema`, trimmed to the
  keywords that field documents.
- `generate_content_stream` posts to `:streamGenerateContent?alt=sse` and yields one
  `GenerateContentResponse` per server-sent event; text arrives in pieces across them,
  usage metadata (cumulative) and the finish reason with the last ones.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from google import genai
from google.genai import errors, types
from pydantic import BaseModel

from pipelines.config import LLMSettings
from pipelines.llm.base import LLMError, LLMRequest, LLMResponse, PartialText, TokenUsage
from pipelines.llm.reliability import CallGate, TransientCallError, is_retryable_status
from pipelines.metrics import record_tokens

# Keywords GenerationConfig.responseJsonSchema documents as supported.
_SCHEMA_KEYWORDS = frozenset(
    {
        "$id", "$defs", "$ref", "$anchor", "type", "format", "title", "description", "enum",
        "items", "prefixItems", "minItems", "maxItems", "minimum", "maximum", "anyOf", "oneOf",
        "properties", "additionalProperties", "required", "propertyOrdering",
    }
)  # fmt: skip
_BLOCKED_FINISH_REASONS = frozenset(
    {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MODEL_ARMOR",
        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
    }
)  # fmt: skip


class GeminiLLM:
    """Gemini over google-genai's async client; every call goes through the shared gate."""

    name = "gemini"

    def __init__(self, api_key: str, gate: CallGate) -> None:
        self._gate = gate
        timeout_ms = max(1, int(gate.policy.call_timeout_s * 1000))
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                # v1beta: the Gemini API version whose docs define responseJsonSchema.
                api_version="v1beta",
                timeout=timeout_ms,
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    @classmethod
    def from_settings(cls, settings: LLMSettings, gate: CallGate) -> GeminiLLM:
        """Build from GEMINI_API_KEY; a missing key is a configuration error."""
        if settings.gemini_api_key is None:
            raise ValueError("LLM_PROVIDER=gemini needs GEMINI_API_KEY")
        return cls(settings.gemini_api_key.get_secret_value(), gate)

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Answer one request; raw text (JSON when a schema is set), never parsed here."""
        return await self._through_gate(request, lambda: self._call_once(request))

    async def generate_streaming(self, request: LLMRequest, on_partial: PartialText) -> LLMResponse:
        """Like `generate`, reporting the text as it streams in (each attempt from "")."""
        return await self._through_gate(request, lambda: self._stream_once(request, on_partial))

    async def _through_gate(
        self, request: LLMRequest, attempt: Callable[[], Awaitable[tuple[str, TokenUsage]]]
    ) -> LLMResponse:
        """Run `attempt` under the shared gate (limits, retries) and record its tokens."""
        result = await self._gate.run(attempt, provider=self.name, step=request.step)
        text, usage = result.value
        record_tokens(usage)
        return LLMResponse(text=text, model=request.model, usage=usage, attempts=result.attempts)

    async def embed(
        self, texts: list[str], *, model: str, task_type: str, dimensions: int
    ) -> list[list[float]]:
        """Embedding vectors of `texts` in one `embed_content` call (the Gemini API's
        batchEmbedContents), through the same gate as every other call."""

        async def attempt() -> list[list[float]]:
            with sdk_errors_classified():
                response = await self._client.aio.models.embed_content(
                    model=model,
                    contents=list(texts),
                    config=types.EmbedContentConfig(
                        task_type=task_type, output_dimensionality=dimensions
                    ),
                )
            vectors = [list(e.values or []) for e in response.embeddings or []]
            if len(vectors) != len(texts) or any(not v for v in vectors):
                raise TransientCallError("malformed_response", "embeddings missing")
            return vectors

        result = await self._gate.run(attempt, provider=self.name, step="embed")
        return result.value

    async def aclose(self) -> None:
        """Close the HTTP sessions google-genai opened for this client."""
        await self._client.aio.aclose()

    async def _call_once(self, request: LLMRequest) -> tuple[str, TokenUsage]:
        """One attempt on the wire, with its failures classified for the gate."""
        with sdk_errors_classified():
            response = await self._client.aio.models.generate_content(
                model=request.model, contents=request.prompt, config=build_config(request)
            )
        return response_text(response), response_usage(response)

    async def _stream_once(
        self, request: LLMRequest, on_partial: PartialText
    ) -> tuple[str, TokenUsage]:
        """One streamed attempt; the gate's slot and timeout cover the whole stream."""
        pieces: list[str] = []
        usage = TokenUsage()
        reason: str | None = None
        with sdk_errors_classified():
            stream = await self._client.aio.models.generate_content_stream(
                model=request.model, contents=request.prompt, config=build_config(request)
            )
            async for chunk in stream:
                piece, reason = chunk_text(chunk, reason)
                if piece:
                    pieces.append(piece)
                    on_partial("".join(pieces))
                if chunk.usage_metadata is not None:
                    usage = response_usage(chunk)
        if not pieces:
            raise LLMError(f"Gemini returned an empty answer (finish_reason={reason})")
        if reason is None:  # text, but no finish reason: the stream was cut short
            raise TransientCallError("truncated_stream", "the stream ended before its last event")
        return "".join(pieces), usage


# Our steps pass no tools. Left on, the SDK's automatic function calling deep-copies the
# config (schema included) and logs a line on every call, for a loop that never runs.
NO_FUNCTION_CALLING = types.AutomaticFunctionCallingConfig(disable=True)


def build_config(request: LLMRequest) -> types.GenerateContentConfig:
    """System instruction, and JSON mode with the step's schema when it has one."""
    schema = request.output_schema
    return types.GenerateContentConfig(
        system_instruction=request.system or None,
        response_mime_type="application/json" if schema else None,
        response_json_schema=gemini_json_schema(schema) if schema else None,
        automatic_function_calling=NO_FUNCTION_CALLING,
    )


@functools.cache
def gemini_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema reduced to what responseJsonSchema accepts.

    Unsupported keywords (`default`, `pattern`, `exclusiveMinimum`...) are dropped rather
    than risk a 400: the steps validate the answer with the full pydantic model anyway.
    Cached per model class: it is rebuilt identically on every call otherwise.
    """
    cleaned: dict[str, Any] = _clean_schema(model.model_json_schema())
    return cleaned


def _clean_schema(node: Any) -> Any:
    """Recursively keep supported keywords; name maps and schema lists are walked."""
    if isinstance(node, list):
        return [_clean_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "const" in node and "enum" not in node:
        node = {**node, "enum": [node["const"]]}
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:  # older pydantic wraps refs in allOf
        node = {**all_of[0], **{k: v for k, v in node.items() if k != "allOf"}}
    if "$ref" in node:  # no siblings allowed next to $ref, except $-keywords
        return {key: value for key, value in node.items() if key.startswith("$")}
    cleaned: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _SCHEMA_KEYWORDS:
            continue
        if key in ("properties", "$defs"):
            cleaned[key] = {name: _clean_schema(sub) for name, sub in value.items()}
        else:
            cleaned[key] = _clean_schema(value)
    if "properties" in cleaned and "propertyOrdering" not in cleaned:
        cleaned["propertyOrdering"] = list(cleaned["properties"])
    return cleaned


@contextlib.contextmanager
def sdk_errors_classified() -> Iterator[None]:
    """Turn the SDK's failures into what the gate understands, for either kind of call.

    An API error is classified by status (`classify_api_error`); a body or streamed event
    cut or mangled on the way is transient. The SDK's message for the latter quotes the raw
    text, so only its type is kept.
    """
    try:
        yield
    except errors.APIError as exc:
        raise classify_api_error(exc) from exc
    except (json.JSONDecodeError, errors.UnknownApiResponseError) as exc:
        raise TransientCallError(
            "malformed_response", f"unreadable answer ({type(exc).__name__})"
        ) from exc


def classify_api_error(exc: errors.APIError) -> Exception:
    """429/5xx become TransientCallError (with RetryInfo); other codes are final."""
    code = int(exc.code or 0)
    message = f"Gemini HTTP {code} {exc.status or ''}: {exc.message or ''}".strip()
    if is_retryable_status(code):
        return TransientCallError(str(code), message, retry_after_s=retry_delay_s(exc.details))
    return LLMError(message)


def retry_delay_s(body: Any) -> float | None:
    """The `google.rpc.RetryInfo` delay of an error body ("1.5s"), if it carries one."""
    error = body.get("error", body) if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith(
            "google.rpc.RetryInfo"
        ):
            continue
        delay = detail.get("retryDelay")
        try:
            return float(str(delay).removesuffix("s")) if delay is not None else None
        except ValueError:
            return None
    return None


def response_text(response: types.GenerateContentResponse) -> str:
    """The first candidate's text; a blocked or empty answer is an error, not ''."""
    if not response.candidates and response.prompt_feedback is None:
        raise LLMError("Gemini returned no candidates")
    text, reason = chunk_text(response, None)
    if not text:
        raise LLMError(f"Gemini returned an empty answer (finish_reason={reason})")
    return text


def chunk_text(
    response: types.GenerateContentResponse, reason: str | None
) -> tuple[str, str | None]:
    """The text of a whole answer or of one streamed event, and the finish reason so far.

    A blocked prompt or a withheld answer is an error, whichever event says so. An event
    without candidates (usage only) carries no text and leaves `reason` as it was.
    """
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        raise LLMError(f"Gemini blocked the prompt: {_enum_name(feedback.block_reason)}")
    if not response.candidates:
        return "", reason
    candidate = response.candidates[0]
    reason = _enum_name(candidate.finish_reason) or reason
    if reason in _BLOCKED_FINISH_REASONS:
        raise LLMError(f"Gemini withheld the answer: finish_reason={reason}")
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    return "".join(part.text for part in parts if part.text and not part.thought), reason


def response_usage(response: types.GenerateContentResponse) -> TokenUsage:
    """Token counts from usage_metadata; thinking tokens are billed as output."""
    meta = response.usage_metadata
    if meta is None:
        return TokenUsage()
    return TokenUsage(
        input_tokens=meta.prompt_token_count or 0,
        output_tokens=(meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
        cached_tokens=meta.cached_content_token_count or 0,
    )


def _enum_name(value: Any) -> str | None:
    """An SDK enum's wire name (the SDK may hand back a plain string for new values)."""
    if value is None:
        return None
    return str(getattr(value, "value", value))
