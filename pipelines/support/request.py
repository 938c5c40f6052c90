"""What one support turn knows while it is being answered, and what it produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.prompts import fence
from storage.backends import Actor
from storage.conversations import Turn


@dataclass(frozen=True)
class SupportRequest:
    """The customer's message with its context. `request_id` roots every idempotency key."""

    request_id: str
    text: str
    actor: Actor
    history: list[Turn] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    public: bool = False  # others can read the thread: see `pipelines.support.disclosure`

    def history_text(self) -> str:
        if not self.history:
            return "(none)"
        return "\n".join(f"{turn.role}: {turn.text}" for turn in self.history)

    def fenced(self) -> dict[str, str]:
        """The untrusted parts of the request, fenced for a prompt."""
        return {
            "message": fence("customer_message", self.text),
            "history": fence("history", self.history_text()),
            "products": fence("products", "\n".join(self.products) or "(none)"),
        }

    def raw(self) -> dict[str, Any]:
        """The same values unrendered, for the offline provider and scripted fakes."""
        return {
            "message": self.text,
            "history": [{"role": t.role, "text": t.text} for t in self.history],
            "products": list(self.products),
        }


@dataclass
class Outcome:
    """What answering one message produced: the reply and everything the ticket records."""

    text: str
    intents: list[str] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    escalation_reason: str | None = None
    urgent: bool = False  # an escalation at the urgent SLA targets (`storage.sla`)
    summary: str = ""
    links: list[str] = field(default_factory=list)  # URLs `text` may link to (cited passages)
    # Side effects prepared for the customer's confirmation (`PendingTask.as_dict()`).
    pending: list[dict[str, Any]] = field(default_factory=list)

    @property
    def escalated(self) -> bool:
        return self.escalation_reason is not None
