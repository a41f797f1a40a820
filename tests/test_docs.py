"""The documentation stays short and true to the code: the README fits in 200 lines and keeps the markers
its generated parts go between, every relative link of README.md, config/README.md and docs/*.md reaches a
file (and a heading, where it names one), every registered method, quantizer family, model and dataset is
documented on its page, and docs/fidelity.md's switch table is the switch registry. Light: reads files and
the torch-free registries only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, ROOT / "config" / "README.md", *sorted(DOCS.glob("*.md"))]
MAX_README_LINES = 200

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation (backticks, colons, dots, …) dropped, spaces to
    hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, title in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path.read_text()))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]  # http:, https:, mailto: …


def test_the_readme_is_at_most_200_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move reference material to docs/"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_reaches_a_file_and_heading(page):
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        destination = page if not file_part else (page.parent / file_part).resolve()
        if not destination.exists():
            broken.append(f"{target}: no such file {destination}")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading #{anchor} in {destination.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_the_readme_links_every_docs_page():
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in relative_links(README)}
    missing = [str(p.relative_to(ROOT)) for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


@pytest.mark.parametrize("name", ["timings", "claims"])
def test_the_readme_keeps_the_markers_of_its_generated_parts(name):
    text = README.read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    assert text.count(begin) == 1 and text.count(end) == 1, f"README.md needs {begin} and {end} once each"
    assert text.index(begin) < text.index(end)


def test_the_claims_markers_are_in_their_section():
    text = README.read_text()
    section = text[text.index("## What the default run shows"):]
    section = section[:section.index("\n## ", 1)]
    assert "<!-- claims:begin -->" in section and "<!-- claims:end -->" in section


def builtin_names(registry) -> list[str]:
    """The registry's entries from this repository (a plugin loaded through $MEBQAT_PLUGINS or an entry
    point documents itself)."""
    return [entry.name for entry in registry
            if isinstance(entry.impl, str) and entry.impl.split(".")[0] in ("mebqat", "baselines")]


@pytest.mark.parametrize("registry, page", [("METHODS", "methods-and-engines.md"), ("QUANTIZERS", "quantizers.md"),
                                            ("MODELS", "models.md"), ("DATASETS", "data.md")])
def test_every_registered_name_is_on_its_page(registry, page):
    from mebqat.core import registry as registries

    registries.ensure_loaded()
    names = builtin_names(getattr(registries, registry))
    assert names, f"{registry} is empty"
    text = (DOCS / page).read_text()
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"docs/{page} does not mention {missing}"


def test_docs_fidelity_table_is_the_switch_registry():
    """docs/fidelity.md's switch table is what users read: every switch, its tables and both behaviours
    exactly as mebqat/core/fidelity.py defines them, and no other row."""
    from mebqat.core.fidelity import SWITCHES

    documented = {}
    for row in (DOCS / "fidelity.md").read_text().splitlines():
        if not row.startswith("| `"):
            continue
        name, tables, official, corrected = [cell.strip() for cell in row.strip().strip("|").split("|")]
        documented[name.strip("`")] = (tuple(f"table{t.strip()}" for t in tables.split(",")), official, corrected)
    assert documented == {s.name: (s.tables, s.official, s.corrected) for s in SWITCHES.values()}
