"""Deterministic text rules behind the offline provider: intents, ids, products, sentences.

Keyword and regex rules, rapidfuzz for typo-tolerant product names, BM25 (via
`pipelines.lexical.rank`) for picking sentences. No network, no randomness.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rapidfuzz import fuzz, process

INTENT_PATTERNS: dict[str, list[str]] = {
    "human_handoff": [
        r"\b(human|real person|a person|someone real|agent|representative|manager|operator|"
        r"supervisor|staff( member)?|persona|mensch)\b",
        r"\btalk(ing)? to (a |an |some)?(one|body|person|human|agent)\b",
        r"\b(speak (to|with)|escalate|live (chat|support|agent)|customer service|"
        r"someone from (the|your) team|hand (me )?over)\b",
    ],
    "billing_inquiry": [
        r"\binv[-\s#]?\d{3,}",
        r"\b(invoice|invoices|bill|billed|billing|charged|overcharged|payment|paid|fee|fees|"
        r"receipt|vat|tax)\b",
        r"\b(too high|double charged|charged twice|(a|the|this|that|extra|double) charge|"
        r"charges on|price|cost me|subscription)\b",
        r"\brefund (my|the) (charge|payment)\b",
    ],
    "product_return": [
        r"\b(return|returning|send (it |this |them )?back|sending (it )?back|rma|exchange)\b",
        r"\b(incompatible|not compatible|doesn'?t fit|does not fit|wrong size|don'?t want)\b",
    ],
    "order_status": [
        r"\bord[-\s#]?\d{3,}|\border\s*(number|no\.?|#)?\s*\d{4,}",
        r"\b(where('?s| is| are)|track(ing)?|shipped|shipping status|deliver(y|ed)?|arrive[ds]?)\b",
        r"\b(order status|my order|my package|parcel|shipment|eta|on (its|the) way|"
        r"(hasn'?t|has not|didn'?t|not) (arrived|shipped|come)|still waiting|when (will|does) "
        r"(it|my \w+) (ship|arrive|come))\b",
    ],
    "technical_support": [
        r"\b(not working|doesn'?t work|does not work|stopped working|broken|won'?t (turn on|"
        r"work|charge|connect|pair|boot|start)|not (charging|turning on|connecting|detected|"
        r"recogni[sz]ed|showing up)|(doesn'?t|does not|won'?t) (detect|recogni[sz]e|show up))\b",
        r"\b(error|crash(es|ed)?|freez(e|es|ing)|flicker(s|ing)?|no sound|no signal|"
        r"keeps? (disconnecting|dropping|restarting|turning off)|black screen|blank screen|"
        r"no display|dead pixels?|overheat(s|ing)?|lag(s|gy|ging)?|stuck|glitch(es|y|ing)?|"
        r"buzz(es|ing)?|hiss(es|ing)?|crackl(e|es|ing)|static|grainy|blurry|cuts? out|"
        r"drops? out|charges slowly|register(s|ing)? twice|double[- ]typ\w*|battery drains?)\b",
        r"\b(pair(ing)?|bluetooth|firmware|driver|reset|install|setup|set up|troubleshoot|"
        r"reboot|wi-?fi)\b",
    ],
    "general_question": [
        r"\b(policy|policies|warranty|opening hours|hours|how long|how do i|can i|do you)\b",
        r"\b(what is|what are|which|gift card|discount|membership|store)\b",
    ],
}
ACTION_INTENTS = ("billing_inquiry", "product_return", "order_status")
URGENT = re.compile(
    r"(\b(urgent|asap|immediately|right now|furious|angry|unacceptable|ridiculous|worst|"
    r"scam|lawyer|disgusting)\b|!!+)",
    re.IGNORECASE,
)
INVOICE_ID = re.compile(r"\binv(?:oice)?[-\s#:]*(\d{3,10})\b", re.IGNORECASE)
ORDER_ID = re.compile(r"\bord(?:er)?[-\s#:]*(?:no\.?|number)?\s*(\d{3,10})\b", re.IGNORECASE)
REASON = re.compile(
    r"\b(?:because|since|as|due to|cause|cuz|bc)\b\s*(.+?)(?:[.;!?]|,? and\b|$)"
    r"|\(([^)]{2,120})\)"
    r"|\s[-\u2013\u2014:]\s*(.+?)(?:[.;!?]|,? and\b|$)"
    r"|\b((?:it'?s|its|it is|they'?re|they are|is|are)\s+(?:not |too |the wrong |way too )?"
    r"(?:incompatible|compatible|broken|defective|damaged|faulty|small|big|large|loud|noisy|"
    r"slow|\w+)[^.;!?,]*)",
    re.IGNORECASE,
)
CLAUSE_BREAK = re.compile(
    r"[.;!?\n]+|,?\s+\b(?:and also|also|plus|and then)\b|\s\+\s|,\s*and\b(?=\s+(?:i|where|what|"
    r"when|can|could|please|my|the|invoice|order))",
    re.IGNORECASE,
)
RETURN_WORDS = re.compile(
    r"\b(return|returning|send (?:\w+ )?back|sending (?:\w+ )?back|rma|"
    r"exchange|refund)\b",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}|\n(?=[-*#\d])")
WORD = re.compile(r"[\w'-]+", re.UNICODE)
DISPUTE = re.compile(
    r"\b(too high|higher than|overcharg\w*|wrong|incorrect|double|twice|dispute|not right|"
    r"mistake|error|unexpected|more than|extra|why (is|was)|duplicate)\b",
    re.IGNORECASE,
)


def intent_scores(text: str) -> dict[str, int]:
    """How many rule patterns of each intent match the text."""
    lowered = text.lower()
    return {
        intent: sum(1 for pattern in patterns if re.search(pattern, lowered))
        for intent, patterns in INTENT_PATTERNS.items()
    }


def is_urgent(text: str) -> bool:
    shouting = sum(1 for w in WORD.findall(text) if len(w) > 3 and w.isalpha() and w.isupper())
    return bool(URGENT.search(text)) or shouting >= 3


def invoice_ids(text: str) -> list[str]:
    return list(dict.fromkeys(f"INV-{m}" for m in INVOICE_ID.findall(text)))


def order_ids(text: str) -> list[str]:
    return list(dict.fromkeys(f"ORD-{m}" for m in ORDER_ID.findall(text)))


GENERIC_WORDS = frozenset(
    "fast portable smart wireless mechanical ergonomic office noise-cancelling 27-inch 4k hd "
    "1tb phone laptop usb-c the and for with".split()
)


def find_product(text: str, products: Iterable[str]) -> str | None:
    """The purchased product the text names, tolerant of case, partial names and typos.

    A product matches on its distinctive words (e.g. "hub", "mouse"), each fuzzily
    (rapidfuzz ratio >= 80) against the message's words; generic words such as "laptop"
    never decide a match, so "incompatible with my laptop" does not pick a laptop stand.
    """
    words = WORD.findall(text.lower())
    if not words:
        return None
    best, best_score = None, 0
    for name in products:
        score = 0
        for word in WORD.findall(name.lower()):
            if len(word) < 3 or word in GENERIC_WORDS:
                continue
            if process.extractOne(word, words, scorer=fuzz.ratio, score_cutoff=80):
                score += len(word)
        if score > best_score:
            best, best_score = name, score
    return best


def return_phrase(text: str) -> str | None:
    """The object of "return ..." when no known product matched (e.g. a product never bought)."""
    match = re.search(
        r"\b(?:return|send back)\s+(?:the|my|a|an|this|these|those)?\s*([\w' -]{2,60}?)"
        r"(?:\s+(?:because|since|as|due|from|bought|i|which|that)\b|[.,;!?]|$)",
        text,
        re.IGNORECASE,
    )
    return match.group(1).strip() if match else None


def clauses(text: str) -> list[str]:
    """The message cut at sentence ends and at joins like "and also", "plus", "; "."""
    return [part.strip(" ,") for part in CLAUSE_BREAK.split(text) if part and part.strip(" ,")]


def return_reason(clause: str) -> str | None:
    """Why the customer returns the product, from one clause ("because ...", "(...)", ...)."""
    match = REASON.search(clause)
    if not match:
        return None
    reason = next((group for group in match.groups() if group), "")
    return reason.strip(" ,") or None


def return_requests(text: str, products: Iterable[str]) -> list[tuple[str | None, str | None]]:
    """(product, reason) for each clause that asks to return something.

    A clause names the product (a purchased one, matched fuzzily, or the phrase after
    "return"); its reason may sit in the same clause or in the next one ("... - too loud").
    """
    known = list(products)
    parts = clauses(text)
    found: list[tuple[str | None, str | None]] = []
    for index, clause in enumerate(parts):
        if not RETURN_WORDS.search(clause) and not re.search(
            r"\b(incompatible|not compatible|doesn'?t fit|wrong size)\b", clause, re.IGNORECASE
        ):
            continue
        product = find_product(clause, known) or return_phrase(clause)
        reason = return_reason(clause)
        if reason is None and index + 1 < len(parts) and not RETURN_WORDS.search(parts[index + 1]):
            reason = return_reason(parts[index + 1])
        if product is None and found:
            continue  # a second mention of the same return ("... and refund it")
        found.append((product, reason))
    return found


def sentences(text: str) -> list[str]:
    """Split text into trimmed sentences (and list items / paragraphs)."""
    parts = (part.strip(" \t-*#") for part in SENTENCE_END.split(text))
    return [" ".join(part.split()) for part in parts if len(part.split()) >= 3]


def concern_sentence(text: str, anchor: str | None) -> str:
    """The sentence about the invoice (`anchor`), or the first sentence."""
    found = sentences(text) or [text.strip()]
    if anchor:
        for sentence in found:
            if anchor.lower() in sentence.lower() or "invoice" in sentence.lower():
                return sentence[:300]
    return found[0][:300]


def wants_investigation(text: str) -> bool:
    return bool(DISPUTE.search(text))


def content_words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if len(w) > 3]
