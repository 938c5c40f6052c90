"""The narrow LLM interface and its implementations (Gemini, offline)."""

from pipelines.llm.base import LLM, LLMError, LLMRequest, LLMResponse, LLMUnavailable, TokenUsage

__all__ = ["LLM", "LLMError", "LLMRequest", "LLMResponse", "LLMUnavailable", "TokenUsage"]
