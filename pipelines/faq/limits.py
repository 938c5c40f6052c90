"""How large a /faq may be, by role.

A /faq costs about (1 + 2 x questions) calls over all its documents, so its size is its
cost. Support agents get the chain's maximum (`MAX_QUESTIONS` questions over
`DOCUMENT_BUDGET_CHARS`); everyone else gets smaller limits (FAQ_MAX_QUESTIONS_CUSTOMER,
FAQ_MAX_DOCUMENT_CHARS_CUSTOMER). The modal checks the number of questions so the
requester can fix it at once; the job checks again and decides, since a submission can be
forged; documents over the character limit are trimmed, with a note in the FAQ.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.faq import MAX_QUESTIONS
from pipelines.faq.chain import DOCUMENT_BUDGET_CHARS
from pipelines.llm.budget import Scope

# Why no FAQ was built when a daily token budget is spent (`pipelines.llm.budget`).
FAQ_BUDGET_TEXT: dict[Scope, str] = {
    "user": "you have reached today's limit for the assistant. Try again tomorrow (the "
    "limit resets at 00:00 UTC), or ask a support agent to build it.",
    "everyone": "the assistant has reached today's limit for everyone. Try again tomorrow "
    "(the limit resets at 00:00 UTC).",
}


@dataclass(frozen=True)
class FaqLimits:
    """The limits of a requester who is not a support agent; agents get the maximum."""

    customer_questions: int = 10
    customer_document_chars: int = 100_000

    def max_questions(self, is_agent: bool) -> int:
        return MAX_QUESTIONS if is_agent else min(self.customer_questions, MAX_QUESTIONS)

    def document_chars(self, is_agent: bool) -> int:
        if is_agent:
            return DOCUMENT_BUDGET_CHARS
        return min(self.customer_document_chars, DOCUMENT_BUDGET_CHARS)

    def questions_refusal(self, questions: int, is_agent: bool) -> str | None:
        """Why `questions` is too many for this requester, or None when it is allowed."""
        limit = self.max_questions(is_agent)
        if questions <= limit:
            return None
        return (
            f"you can ask for up to {limit} questions (support agents up to {MAX_QUESTIONS}); "
            f"you asked for {questions}."
        )


__all__ = ["FAQ_BUDGET_TEXT", "FaqLimits"]
