"""Templated replies of the offline provider, written from workers' structured results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pipelines.llm.offline_rules import find_product

OFFLINE_NOTE = "_(Answered by the offline assistant: rule-based, no AI model.)_"


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _billing(facts: Mapping[str, Any]) -> str:
    invoice = facts["invoice"]
    total = _money(invoice["total_cents"])
    if "awaiting_confirmation" in facts:
        return (
            f"Invoice {invoice['invoice_number']} totals {total}. I can open a billing case to "
            "investigate it: please confirm with the buttons below."
        )
    if "case" in facts:
        case = facts["case"]
        return (
            f"I've opened billing case *{case['case_number']}* to investigate invoice "
            f"{invoice['invoice_number']} ({total}). Our billing team will get back to you by "
            f"{case['eta']}."
        )
    lines = "; ".join(
        f"{line['description']} {_money(line['amount_cents'])}" for line in invoice["lines"]
    )
    return (
        f"Invoice {invoice['invoice_number']} (issued {invoice['issued_on']}) totals {total} "
        f"and is {invoice['status']}: {lines}."
    )


def _return(facts: Mapping[str, Any]) -> str:
    if "awaiting_confirmation" in facts:
        return f"{facts['awaiting_confirmation']}? Please confirm with the buttons below."
    result = facts["return"]
    if not result["authorized"]:
        return str(result["refusal"])
    return (
        f"Your return of the {result['product_name']} (order {result['order_number']}) is "
        f"authorised: *{result['rma_number']}*. {result['instructions']}"
    )


def _status(facts: Mapping[str, Any]) -> str:
    order = facts["order"]
    text = f"Order {order['order_number']} is *{order['status']}*"
    if order.get("carrier"):
        text += f" with {order['carrier']} (tracking {order['tracking_number']})"
    if order.get("eta"):
        text += f", expected by {order['eta']}"
    return text + "."


def synthesize(results: Iterable[Mapping[str, Any]]) -> str:
    parts: list[str] = []
    asks: list[str] = []
    for result in results:
        facts = result.get("facts", {})
        if result.get("needs"):
            asks.append(str(result["needs"]))
        elif "error" in facts:
            parts.append(f"I'm sorry: {facts['error']}. Could you double-check the number?")
        elif result["kind"] == "billing_inquiry":
            parts.append(_billing(facts))
        elif result["kind"] == "product_return":
            parts.append(_return(facts))
        else:
            parts.append(_status(facts))
    if asks:
        parts.append("To help further, could you tell me " + " and ".join(asks) + "?")
    body = "\n".join(f"• {part}" for part in parts) if len(parts) > 1 else "".join(parts)
    return f"Thanks for reaching out!\n{body}\n{OFFLINE_NOTE}"


def technical_reply(message: str, products: Iterable[str]) -> str:
    product = find_product(message, products)
    subject = f"your {product}" if product else "the device"
    return (
        f"Sorry to hear {subject} is giving you trouble. A few first steps:\n"
        "1. Unplug it (or turn it off) for 30 seconds, then reconnect it.\n"
        "2. Try another cable, port or paired device to rule those out.\n"
        "3. Install the latest firmware or driver from the product page.\n"
        "Which of these have you already tried, and what is the exact model? "
        f"{OFFLINE_NOTE}"
    )
