"""The documentation stays short and true to the code: the README fits in 200 lines and keeps the markers
its generated parts go between, every relative link of README.md, config/README.md and docs/*.md reaches a
file (and a heading, where it names one), every registered method, quantizer family, model and dataset is
documented on its page, docs/fidelity.md's switch table is the switch registry, every section reference in
code and docs names a document in the repository (and an existing section of official-mebqat.md), and the
setup files' comments and the README carry no measurement history, and no snakemake command line in the
docs, Makefile, Snakefile, config or profile comments writes a target where an option reads it as a value.
Light: reads files and the torch-free registries only."""

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
    return [
        target for target in LINK.findall(prose(path.read_text())) if not re.match(r"^[a-z][a-z0-9+.-]*:", target)
    ]  # http:, https:, mailto: …


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
    section = text[text.index("## What the default run shows") :]
    section = section[: section.index("\n## ", 1)]
    assert "<!-- claims:begin -->" in section and "<!-- claims:end -->" in section


def builtin_names(registry) -> list[str]:
    """The registry's entries from this repository (a plugin loaded through $MEBQAT_PLUGINS or an entry
    point documents itself)."""
    return [
        entry.name
        for entry in registry
        if isinstance(entry.impl, str) and entry.impl.split(".")[0] in ("mebqat", "baselines")
    ]


@pytest.mark.parametrize(
    "registry, page",
    [
        ("METHODS", "methods-and-engines.md"),
        ("QUANTIZERS", "quantizers.md"),
        ("MODELS", "models.md"),
        ("DATASETS", "data.md"),
    ],
)
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


# Where code and docs cite sections: every file a contributor edits (the generated results are not scanned).
SOURCES = [
    path
    for pattern in (
        "mebqat/**/*",
        "baselines/**/*",
        "benchmarks/**/*",
        "tests/**/*",
        "workflow/**/*",
        "scripts/**/*",
        "config/*",
        "docs/**/*.md",
        "README.md",
        "Snakefile",
        "Makefile",
    )
    for path in sorted(ROOT.glob(pattern))
    if path.is_file()
    and (
        path.suffix in {".py", ".md", ".yaml", ".yml", ".smk", ".rst", ".sh"} or path.name in {"Snakefile", "Makefile"}
    )
]
OFFICIAL = DOCS / "reference" / "official-mebqat.md"
OFFICIAL_REF = re.compile(r"official(?:-mebqat\.md)?\)? §")
SECTION = re.compile(r"§(\d+(?:\.\d+)?)(?:[–-](\d+(?:\.\d+)?))?")


def official_sections() -> set[str]:
    """The numbers a reference to official-mebqat.md may name: its sections (``## 4.``), subsections
    (``### 4.3``) and the numbered items of §8 (``§8.12`` is item 12)."""
    text = OFFICIAL.read_text()
    numbers = set(re.findall(r"^## (\d+)\.", text, re.M)) | set(re.findall(r"^### (\d+\.\d+)\b", text, re.M))
    surprises = text[text.index("\n## 8.") : text.index("\n## 9.")]
    return numbers | {f"8.{item}" for item in re.findall(r"^(\d+)\. ", surprises, re.M)}


def test_no_reference_to_the_design_document_outside_the_repository():
    """The design document ('SPEC') is not part of the repository: code and docs cite the docs page that
    covers the point instead, so that a reader can follow every reference."""
    design_ref = re.compile("SPEC" + r"\s*§")  # split, so that this file does not match itself
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in SOURCES
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if design_ref.search(line)
    ]
    assert not found, "cite a docs page, not the design document:\n" + "\n".join(found)


def test_every_official_section_reference_exists():
    """'official §n' means section n of docs/reference/official-mebqat.md; each cited number is there."""
    known = official_sections()
    assert {"2.3", "4", "8.12"} <= known
    missing = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for ref in OFFICIAL_REF.finditer(line):
                cited = line[ref.end() - 1 :].split(")")[0]  # the parenthesis the reference opens
                for first, last in SECTION.findall(cited):
                    missing += [
                        f"{path.relative_to(ROOT)}:{number}: §{n}" for n in (first, last) if n and n not in known
                    ]
    assert not missing, f"no such section in {OFFICIAL.relative_to(ROOT)}:\n" + "\n".join(missing)


HISTORY = re.compile(
    r"moved \d+ to \d+|\bin a later run\b|\bthe run before\b|\bin the (next|previous) run\b|"
    r"\bthe previous \d+|\bin one default run\b|\btwo default runs\b",
    re.I,
)


def test_setup_comments_and_the_readme_carry_no_measurement_history():
    """A setup file's comment says what a value is and why; the README gives the current figures. The runs
    that led there belong in docs/benchmarks.md's budget history."""
    found = []
    for path in sorted((ROOT / "mebqat" / "resources" / "setups").glob("*.yaml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            comment = re.search(r"(?:^|\s)#(.*)$", line)
            if comment and HISTORY.search(comment.group(1)):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    readme = README.read_text()
    readme = readme[: readme.index("<!-- claims:begin -->")] + readme[readme.index("<!-- claims:end -->") :]
    found += [f"README.md: {match.group(0)!r}" for match in HISTORY.finditer(readme)]
    assert not found, "move it to docs/benchmarks.md (Budget history):\n" + "\n".join(found)
    assert "## Budget history" in (DOCS / "benchmarks.md").read_text()


# Snakemake's options that take any number of values: a target written after one is read as one more value
MANY_VALUED = {
    "--config", "-C", "--configfile", "--configfiles", "--default-resources", "--default-res", "--set-resources",
    "--set-threads", "--set-scatter", "--resources", "--res", "-R", "--forcerun", "--until", "-U", "--omit-from",
    "-O", "--allowed-rules", "--prioritize", "-P",
}  # fmt: skip
TARGETS = {"all", "tables", "figures", "report"}
COMMAND_FILES = [
    *PAGES,
    ROOT / "Makefile",
    ROOT / "Snakefile",
    *sorted((ROOT / "config").glob("*.yaml")),
    *sorted((ROOT / "workflow" / "profiles").glob("*/*.yaml")),
    *sorted((ROOT / "profiles").glob("*/*.yaml")),
]


def swallowed_targets(text: str) -> list[str]:
    """Each snakemake command line of ``text`` that writes a target after a many-valued option."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        for match in re.finditer(r"(?:^|[\s`/])snakemake\s+([^`#]*)", line):
            values = False
            for word in match.group(1).split():
                if word == "--":
                    break
                if word.startswith("-"):
                    values = word.split("=")[0] in MANY_VALUED
                elif values and (word in TARGETS or word.endswith("metrics.json")):
                    found.append(" ".join(match.group(0).split()))
                    break
    return found


def test_every_documented_command_writes_its_targets_before_many_valued_options():
    assert swallowed_targets("snakemake --cores 8 --resources gpu=1 all --configfile c.yaml  # one GPU") == [
        "snakemake --cores 8 --resources gpu=1 all --configfile c.yaml"
    ]
    assert swallowed_targets("  `snakemake --config a=1 \\\n    b=2 tables`") and not swallowed_targets(
        "snakemake tables --config a=1 b=2; snakemake --config a=1 -- tables; snakemake --profile p all -n"
    )
    found = [
        f"{path.relative_to(ROOT)}: {cmd}" for path in COMMAND_FILES for cmd in swallowed_targets(path.read_text())
    ]
    assert not found, "put the targets right after `snakemake` (docs/cluster.md, Command lines):\n" + "\n".join(found)
