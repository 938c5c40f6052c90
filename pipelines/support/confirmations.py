"""Confirm before acting: side effects wait for the customer's yes.

With `CONFIRM_ACTIONS` on (the default: returns and billing cases), the returns and
billing workers do not act: they return what they understood as a `PendingTask` (the
product, order and reason; the invoice and the concern), the reply says it will be done
once confirmed, and the Slack layer shows Confirm / Change / Cancel. Reads (order status,
an invoice lookup) are answered at once as before. `run_confirmed` later does exactly the
task that was shown, with the idempotency key the worker would have used, so a confirmed
task replayed by a retry opens nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.config import ConfirmKind, LLMSettings
from storage.backends import Actor, BusinessSystems

RETURN = "product_return"
BILLING_CASE = "billing_case"
SETTING_OF: dict[str, ConfirmKind] = {RETURN: "returns", BILLING_CASE: "billing_cases"}


@dataclass(frozen=True)
class PendingTask:
    """A side effect prepared for confirmation: its kind, exact parameters, and the
    sentence the customer confirms ("Open a return for the Mechanical Keyboard ...")."""

    kind: str
    params: dict[str, str]
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params), "summary": self.summary}


def pending_request_id(request_id: str, task: dict[str, Any]) -> str:
    """The request a pending task is stored under: one per message *and* subject (the
    invoice, the product), so two invoices in one message wait for two confirmations; a
    retried job names the same subjects and finds the ones it prepared."""
    params = task.get("params") or {}
    subject = params.get("invoice_number") or params.get("product_name") or ""
    return f"{request_id}:{subject}" if subject else request_id


def needs_confirmation(kind: str, settings: LLMSettings) -> bool:
    return SETTING_OF.get(kind) in settings.confirm_actions


def return_pending(product: str, reason: str) -> PendingTask:
    said = f" (reason: {reason})" if reason and reason != "not given" else ""
    return PendingTask(
        RETURN,
        {"product_name": product, "reason": reason},
        f"Open a return for the {product}{said}",
    )


def case_pending(invoice_number: str, concern: str) -> PendingTask:
    return PendingTask(
        BILLING_CASE,
        {"invoice_number": invoice_number, "concern": concern},
        f"Open a billing case on invoice {invoice_number}: {concern}",
    )


@dataclass(frozen=True)
class ConfirmedResult:
    """What confirming did: the sentence for the customer and the ticket's action."""

    text: str
    action: str | None


async def run_confirmed(
    systems: BusinessSystems, actor: Actor, request_id: str, task: PendingTask
) -> ConfirmedResult:
    """Do the confirmed task, keyed like the worker would have keyed it."""
    if task.kind == RETURN:
        result = await systems.returns.authorize_return(
            actor,
            task.params["product_name"],
            task.params.get("reason") or "not given",
            idempotency_key=f"{request_id}:return",
        )
        if not result.authorized:
            return ConfirmedResult(str(result.refusal or "The return could not be opened."), None)
        return ConfirmedResult(
            f"Done: return *{result.rma_number}* is open for the {result.product_name} "
            f"(order {result.order_number}). {result.instructions}",
            f"{result.rma_number} created",
        )
    number = task.params["invoice_number"]
    case = await systems.billing.open_case(
        actor, number, task.params["concern"], idempotency_key=f"{request_id}:case:{number}"
    )
    return ConfirmedResult(
        f"Done: billing case *{case.case_number}* is open for invoice {number}; our billing "
        f"team will get back to you by {case.eta}.",
        f"{case.case_number} opened",
    )


__all__ = [
    "BILLING_CASE",
    "RETURN",
    "ConfirmedResult",
    "PendingTask",
    "case_pending",
    "needs_confirmation",
    "pending_request_id",
    "return_pending",
    "run_confirmed",
]
