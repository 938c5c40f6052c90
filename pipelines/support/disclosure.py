"""What an account reply may show in a thread other people can read.

In a public channel, the amounts and the invoice, order and tracking numbers of the
customer's account are posted only when the ticket's owner wrote them in the thread
themselves; anything else is withheld, with a note inviting a direct message. Numbers of
the actions taken for them in this conversation (RMA, CASE) stay: the customer needs them
to follow up, and they say nothing the rest of the reply does not.
"""

from __future__ import annotations

import re

# A currency sign or name, or a bare amount with cents ("totals 154.00").
MONEY = re.compile(
    r"[$€£]\s?\d[\d,]*(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)?\s?(?:USD|EUR|GBP|dollars?|euros?)\b"
    r"|\b\d[\d,]*\.\d\d\b",
    re.IGNORECASE,
)
RECORD_ID = re.compile(r"\b(?:INV|ORD)-\d+\b|\b1Z[0-9A-Z]{6,}\b", re.IGNORECASE)
WITHHELD = "(withheld)"
PUBLIC_NOTE = (
    "_This channel is public, so I've left out amounts and reference numbers you did not "
    "write here. Send me a direct message to see them._"
)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def withhold_account_details(reply: str, owner_words: str) -> str:
    """`reply` without the amounts and record numbers the owner did not write."""
    written = set(re.findall(r"\d+", owner_words))
    written_money = {_digits(m) for m in MONEY.findall(owner_words)}
    withheld = False

    def record(match: re.Match[str]) -> str:
        nonlocal withheld
        if _digits(match[0]) in written:
            return match[0]
        withheld = True
        return WITHHELD

    def money(match: re.Match[str]) -> str:
        nonlocal withheld
        if _digits(match[0]) in written_money:
            return match[0]
        withheld = True
        return WITHHELD

    redacted = MONEY.sub(money, RECORD_ID.sub(record, reply))
    return f"{redacted}\n\n{PUBLIC_NOTE}" if withheld else redacted
