"""The repository stands alone: comments, docstrings and docs cite pages of ``docs/`` by section name, never
design notes kept elsewhere (``protocol.md §5``, ``../shared/...``, "issue 4"), and every cited section
exists. Checked on the source, as tests/test_layers.py checks the imports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

TEXT_SUFFIXES = {".py", ".md", ".toml", ".sh", ".cfg"}
FOLDERS = ("logq", "cli", "tests", "docs", "configs", "scripts", "benchmarks")


def _checked() -> list[Path]:
    """The repository's text files (README, sources, tests, docs, configs), this one left out: its
    docstring and patterns show what they forbid."""
    found = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    found += [p for folder in FOLDERS for p in (ROOT / folder).rglob("*")]
    return sorted(
        p
        for p in found
        if p.is_file()
        and (p.suffix in TEXT_SUFFIXES or p.name == "Makefile")
        and "__pycache__" not in p.parts
        and p != Path(__file__)
    )


CHECKED = _checked()

# Citations of documents that are not in the repository.
OUTSIDE = re.compile(
    r"\.\./shared"  # a folder next to the checkout
    r"|(?<!docs/)\b(?:protocol|reliability)\.md\b"  # a design note of that name, not the page in docs/
    r"|§"  # section numbers of those notes
    r"|\bdesign (?:note|§)"
    r"|\bissue \d+",  # the tracker's numbering, which readers of the code do not have
    re.IGNORECASE,
)

# docs/page.md, "Section" or docs/page.md ("Section"), possibly wrapped over comment or docstring lines.
CITATION = re.compile(r'docs/([a-z_]+)\.md\)?,? \(?"([^"]{2,100})"')


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _headings(page: Path) -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", page.read_text(), re.MULTILINE)}


@pytest.mark.parametrize("path", CHECKED, ids=_rel)
def test_no_citation_of_documents_outside_the_repository(path: Path) -> None:
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        found = OUTSIDE.search(line)
        assert found is None, f"{_rel(path)}:{number}: cites {found.group(0)!r}, not in the repository"


def test_cited_sections_exist() -> None:
    headings = {page.stem: _headings(page) for page in DOCS.glob("*.md")}
    bad = []
    for path in CHECKED:
        flat = re.sub(r"\n\s*(?:#\s*)?", " ", path.read_text(errors="replace"))
        for page, section in CITATION.findall(flat):
            # a citation may shorten a heading: "The broker in cluster mode (`cluster_member.py`, ...)"
            if not any(h.startswith(section) for h in headings.get(page, ())):
                bad.append(f"{_rel(path)}: docs/{page}.md has no section {section!r}")
    assert not bad, "\n".join(bad)
    assert sum(len(CITATION.findall(p.read_text(errors="replace"))) for p in CHECKED) > 20  # it does look
