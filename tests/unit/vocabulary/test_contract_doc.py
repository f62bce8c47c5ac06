"""docs/contract.md: the contract in the repository, with anchors reports link to."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_sidecar.reporting.render import contract_document
from pytest_sidecar.vocabulary.capabilities import CAPABILITIES
from pytest_sidecar.vocabulary.clauses import CLAUSES
from pytest_sidecar.vocabulary.contract_doc import anchor, link, linkify_markdown, sections_in
from pytest_sidecar.vocabulary.reasons import format_line, parse_line

ROOT = Path(__file__).resolve().parents[3]
DOCUMENT = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
ANCHORS = set(re.findall(r'^<a id="([a-z0-9-]+)"></a>$', DOCUMENT, re.MULTILINE))
# Published anchors never go away (a removed section keeps its anchor with a note).
PUBLISHED = {"s1", "s2", *(f"s2-{n}" for n in range(1, 12)), *(f"s{n}" for n in range(3, 11))}


def test_published_anchors_stay() -> None:
    assert PUBLISHED <= ANCHORS, sorted(PUBLISHED - ANCHORS)


def test_each_anchor_heads_its_own_section() -> None:
    for match in re.finditer(r'^<a id="(s[0-9-]+)"></a>\n\n#+ (§[0-9.]+) ', DOCUMENT,
                             re.MULTILINE):
        assert anchor(match[2]) == match[1], match[0]
    headings = re.findall(r"^#{2,3} §", DOCUMENT, re.MULTILINE)
    assert len(headings) == len(ANCHORS)


def test_every_section_the_suite_cites_has_an_anchor() -> None:
    cited = {c.section for c in CLAUSES.values()} | {c.section for c in CAPABILITIES.values()}
    for path in [*(ROOT / "tests").glob("e2e/*.py"), *(ROOT / "tests").glob("load/*.py"),
                 *(ROOT / "src" / "pytest_sidecar").rglob("*.py")]:
        cited |= set(sections_in(path.read_text(encoding="utf-8")))
    cited = {ref for ref in cited if not ref.startswith("§5.1")}  # the design notes', not ours
    missing = sorted(ref for ref in cited if anchor(ref) not in ANCHORS)
    assert not missing, f"sections cited without an anchor in docs/contract.md: {missing}"


def test_links_and_reason_lines() -> None:
    assert link("§2.10/ids") == "contract.md#s2-10" and anchor("no section") is None
    assert linkify_markdown("see §2.6 and §10") == (
        "see [§2.6](contract.md#s2-6) and [§10](contract.md#s10)")
    line = format_line("NOT_DECLARED", "no webhooks", "implement them, then declare", "§2.6")
    assert line.endswith("(contract §2.6)")
    parsed = parse_line(line)
    assert parsed is not None and parsed.contract == "§2.6"
    old = parse_line("NOT_DECLARED: no webhooks; action: declare it (CONTRACT §2.6)")
    assert old is not None and old.contract == "§2.6"  # event logs of earlier versions


def test_the_reports_find_the_document() -> None:
    assert contract_document() == DOCUMENT.encode("utf-8")
