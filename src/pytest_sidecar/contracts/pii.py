"""PII and secret detection and scrubbing (CONTRACT §7).

`scrub(text)` replaces e-mails `[EMAIL]`, phone numbers `[PHONE]`, Luhn-valid card
numbers in any spacing `[CARD]`, US SSNs `[SSN]`, IBANs with a valid mod-97 checksum
`[IBAN]`, and secrets (bearer credentials, JWTs, `sk-...` keys, AWS access keys, PEM
private keys) `[SECRET]`. It never touches trace/request ids, UUIDs, hex digests or
timestamps: digit patterns are anchored so they cannot start or end inside a longer
word or dash-joined token. Scrubbing is idempotent (the placeholders match nothing) and
linear in the input: every pattern has bounded repetition and no nested quantifiers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Boundaries: a match may not start or end inside a word or a dash-joined token, which
# is what keeps UUIDs, hex digests and our ids out.
_B = r"(?<![\w-])"
_E = r"(?![\w-])"

SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[\s\S]{0,10000}?"
               r"-----END [A-Z ]{0,40}PRIVATE KEY-----"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{8,4096}"),
    # A bearer credential has a digit somewhere, so "bearer instruments" is prose.
    re.compile(r"(?i)\bbearer\s{1,4}(?=[A-Za-z0-9._~+/=-]{0,512}\d)[A-Za-z0-9._~+/=-]{16,512}"),
    re.compile(r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{20,256}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
)
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
                   r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}\b")
SSN = re.compile(_B + r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}" + _E)
# Payment cards start with a major industry identifier 2-6 (so epoch-millisecond
# timestamps, which start with 1, are not cards); a card never starts in the middle of
# a grouped digit run ("1234 5678 ...") nor right after an IBAN's "CC00 ".
CARD = re.compile(_B + r"(?<!\d[ -])(?<![A-Z]{2}\d\d )[2-6](?:[ -]?\d){12,18}" + _E)
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
# International (+cc ...) or national with separators between groups; a bare digit run
# (an id, an epoch timestamp) is never a phone number.
PHONE = re.compile(
    _B + r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,4}){1,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4}"
    r"|\d{3} \d{3} \d{4})" + _E)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group()


def _iban(match: re.Match[str]) -> str:
    return "[IBAN]" if iban_valid(match.group()) else match.group()


# Order matters: secrets first (a JWT or key may contain digit runs), then IBAN and cards
# (checksummed), then SSN before phone (both are dash-separated digits), e-mail last.
_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    *((pattern, "[SECRET]") for pattern in SECRET_PATTERNS),
    (IBAN, _iban),
    (CARD, _card),
    (SSN, "[SSN]"),
    (PHONE, "[PHONE]"),
    (EMAIL, "[EMAIL]"),
)
PLACEHOLDERS = ("[EMAIL]", "[PHONE]", "[CARD]", "[SSN]", "[IBAN]", "[SECRET]")


def scrub(text: str) -> str:
    """Replace every PII value and secret in `text` with its placeholder."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def found(text: str) -> list[str]:
    """The placeholders scrubbing would insert (empty: nothing sensitive found)."""
    scrubbed = scrub(text)
    return [p for p in PLACEHOLDERS for _ in range(scrubbed.count(p) - text.count(p))]
