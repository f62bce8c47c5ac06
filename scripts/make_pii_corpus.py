"""Generate the labelled PII/secret corpus shipped at
src/pytest_sidecar/contracts/pii_corpus.jsonl (deterministic: same seed, same file).

    python scripts/make_pii_corpus.py

Each line: {"text", "label", "value"}; label is EMAIL, PHONE, CARD, SSN, IBAN or SECRET
for a positive (value: the sensitive substring), or NONE for a hard negative: text that
looks sensitive but is not (our trace/request ids, UUIDs, digests, timestamps, numbers
failing Luhn or mod-97, prose).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/pytest_sidecar/contracts/pii_corpus.jsonl"
rng = random.Random(20261121)

SENTENCES = ("Please contact {} about the invoice.", "My details: {}.", "{} is the one to use",
             "Forwarding {} to the support team now.", "User wrote: reach me via {} today",
             "({})", "value={}", "Note - {} - confirmed.")


def wrap(value: str) -> str:
    return rng.choice(SENTENCES).format(value)


def digits(n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def luhn_complete(prefix_and_body: str) -> str:
    # Written independently of pytest_sidecar.contracts.pii on purpose: a bug in the
    # scrubber's Luhn check must not be baked into the corpus that tests it.
    for check in string.digits:
        candidate = prefix_and_body + check
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            v = int(ch)
            if i % 2:
                v = v * 2 - 9 if v > 4 else v * 2
            total += v
        if total % 10 == 0:
            return candidate
    raise AssertionError


def iban(country: str, bban: str) -> str:
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{check:02d}{bban}"


def group4(text: str) -> str:
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


def emails() -> list[str]:
    out = []
    for _ in range(120):
        local = rng.choice(["john.doe", "a.b.c", "sam+alerts", "x_y", "first.last2",
                            "ops-team", "m"]) + (str(rng.randrange(100)) if rng.random() < .5
                                                 else "")
        domain = rng.choice(["example.com", "mail.example.org", "corp.example.co.uk",
                             "sub.dept.example.io", "example.travel"])
        out.append(f"{local}@{domain}")
    return out


def phones() -> list[str]:
    fmts = [lambda: f"+1 {digits(3)} 555 {digits(4)}", lambda: f"+1-{digits(3)}-555-{digits(4)}",
            lambda: f"+44 20 {digits(4)} {digits(4)}", lambda: f"+49 30 {digits(4)} {digits(4)}",
            lambda: f"+33 1 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
            lambda: f"+81-3-{digits(4)}-{digits(4)}", lambda: f"({digits(3)}) 555-{digits(4)}",
            lambda: f"{digits(3)}-555-{digits(4)}", lambda: f"{digits(3)}.555.{digits(4)}",
            lambda: f"+1 ({digits(3)}) 555-{digits(4)}"]
    return [rng.choice(fmts)() for _ in range(120)]


def cards() -> list[str]:
    out = []
    for _ in range(120):
        kind = rng.choice(["visa", "mc", "amex", "disc"])
        if kind == "amex":
            number = luhn_complete(rng.choice(["34", "37"]) + digits(12))
            style = rng.choice(["plain", "amex"])
            out.append(number if style == "plain" else
                       f"{number[:4]} {number[4:10]} {number[10:]}")
            continue
        prefix = {"visa": "4", "mc": str(rng.randint(51, 55)), "disc": "6011"}[kind]
        number = luhn_complete(prefix + digits(15 - len(prefix)))
        style = rng.choice(["plain", "space", "dash"])
        separator = " " if style == "space" else "-"
        out.append(number if style == "plain" else
                   separator.join(number[i:i + 4] for i in range(0, 16, 4)))
    return out


def ssns() -> list[str]:
    out: list[str] = []
    while len(out) < 80:
        area = rng.randint(1, 899)
        if area == 666:
            continue
        out.append(f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}")
    return out


def ibans() -> list[str]:
    out = []
    for _ in range(80):
        country, length = rng.choice([("GB", 18), ("DE", 18), ("FR", 23), ("NL", 14),
                                      ("ES", 20)])
        if country in ("GB", "NL"):
            bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + digits(
                length - 4)
        else:
            bban = digits(length)
        value = iban(country, bban)
        out.append(group4(value) if rng.random() < 0.5 else value)
    return out


def secrets_() -> list[str]:
    out = []
    for _ in range(40):
        token = "sct_" + base64.urlsafe_b64encode(rng.randbytes(24)).decode().rstrip("=")
        if not any(c.isdigit() for c in token):
            token += "7"
        out.append(f"Bearer {token}")
    for _ in range(30):
        def part(n: int) -> str:
            return base64.urlsafe_b64encode(rng.randbytes(n)).decode().rstrip("=")
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
        out.append(f"{header}.{part(30)}.{part(32)}")
    for _ in range(30):
        out.append("sk-" + rng.choice(["", "proj-", "live-"]) + "".join(
            rng.choice(string.ascii_letters + string.digits) for _ in range(40)))
    for _ in range(20):
        out.append("AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits)
                                     for _ in range(16)))
    for _ in range(10):
        body = base64.b64encode(rng.randbytes(96)).decode()
        out.append(f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----")
    return out


def negatives() -> list[str]:
    out: list[str] = []
    rand_hex = lambda n: "".join(rng.choice("0123456789abcdef") for _ in range(n))  # noqa: E731
    for _ in range(250):
        out.append(f"trace {uuid.UUID(int=rng.getrandbits(128)).hex} is complete")
    for _ in range(200):
        out.append(f"x-request-id: {rand_hex(32)}")
    for _ in range(200):
        out.append(f"id {uuid.UUID(int=rng.getrandbits(128))}")
    for _ in range(60):  # UUIDs that are all digits: dash-joined, never a phone or card
        out.append(f"uuid {digits(8)}-{digits(4)}-{digits(4)}-{digits(4)}-{digits(12)}")
    for _ in range(200):
        algo = rng.choice([hashlib.sha256, hashlib.sha1, hashlib.md5])
        out.append(f"digest {algo(rng.randbytes(16)).hexdigest()}")
    for _ in range(200):
        ts = (f"{rng.randint(2020, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
              f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")
        out.append(rng.choice([f"at {ts}Z", f"at {ts}.{digits(3)}Z", f"at {ts}+02:00",
                               f"updated_at={ts}.{digits(6)}+00:00"]))
    for _ in range(150):
        seconds = rng.randint(1_600_000_000, 1_900_000_000)
        millis = rng.randint(1_600_000_000_000, 1_900_000_000_000)
        expires = f"expires_at {rng.randint(1_600_000_000, 1_900_000_000)}.{digits(6)}"
        out.append(rng.choice([f"epoch {seconds}", f"ts_ms {millis}", expires]))
    while sum(1 for t in out if t.startswith("ref ")) < 200:  # Luhn-invalid card shapes
        number = luhn_complete("4" + digits(14))
        bad = number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)
        out.append("ref " + rng.choice([bad, " ".join(bad[i:i + 4] for i in range(0, 16, 4))]))
    for _ in range(120):  # invalid SSNs
        out.append("code " + rng.choice([f"000-{digits(2)}-{digits(4)}",
                                         f"666-{digits(2)}-{digits(4)}",
                                         f"9{digits(2)}-{digits(2)}-{digits(4)}",
                                         f"{rng.randint(100, 899)}-00-{digits(4)}",
                                         f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-0000"]))
    while sum(1 for t in out if t.startswith("account ")) < 120:  # IBAN shapes, bad checksum
        value = iban("DE", digits(18))
        bad = value[:2] + f"{(int(value[2:4]) + rng.randint(1, 50)) % 97 + 2:02d}" + value[4:]
        if bad != value:
            out.append("account " + (group4(bad) if rng.random() < .5 else bad))
    prose = [
        "the bearer instruments were signed", "risk-free sk-ill ratings", "email @support on chat",
        "version 1.2.3 and 10.4.22", "connect to 10.0.0.1:8080", "on 2026-11-21 at 12:34",
        "price $1,234.56 and 1,000,000 units", "order ORD-2026-000123 shipped", "3 - 4 - 5 = -6",
        "ext 1234 or room 5678", "zip 94107", "port 443/tcp", "p95 2.31 s over 1800 samples",
        "granularity token, featureset sae-gpt4-2m", "HTTP/1.1 200 OK", "ratio 16:9",
        "ISBN 978-3-16-148410-0", "tel: unknown", "chmod 0644 file", "pid 12345 exited 0",
    ]
    for _ in range(300):
        out.append(rng.choice(prose) + rng.choice(["", ".", " today", " (again)"]))
    for _ in range(150):
        out.append(f"traces/{rng.randint(2024, 2030)}/{rng.randint(1, 12):02d}/"
                   f"{rng.randint(1, 28):02d}/{rand_hex(32)}/token-sae-gpt4-2m-{rand_hex(12)}"
                   ".hif.json.gz")
    for _ in range(150):
        out.append(json.dumps({"ts": f"2026-11-{rng.randint(1, 28):02d}T10:0{rng.randint(0, 9)}:"
                                     f"{rng.randint(10, 59)}.{digits(3)}Z",
                               "event": "trace.complete", "trace_id": rand_hex(32),
                               "request_id": rand_hex(32), "status": 200, "path":
                               f"/v1/traces/{rand_hex(32)}/status", "method": "GET"}))
    return out


def main() -> None:
    rows: list[dict[str, str | None]] = []
    for label, values in (("EMAIL", emails()), ("PHONE", phones()), ("CARD", cards()),
                          ("SSN", ssns()), ("IBAN", ibans()), ("SECRET", secrets_())):
        rows += [{"text": wrap(v), "label": label, "value": v} for v in values]
    rows += [{"text": text, "label": "NONE", "value": None} for text in negatives()]
    OUT.write_text("".join(json.dumps(row) + "\n" for row in rows))
    positives = sum(row["label"] != "NONE" for row in rows)
    print(f"wrote {OUT}: {positives} positives, {len(rows) - positives} negatives")


if __name__ == "__main__":
    main()
