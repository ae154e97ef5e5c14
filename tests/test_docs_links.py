"""The README and the pages under docs/ link only to files that exist, and every anchor names a heading
of the page it points at (GitHub's slugs), so a user following a link or looking at a picture never
lands on nothing."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose(text: str) -> str:
    """The page without its fenced code blocks and inline code spans (links there are not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text.replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in prose(page.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def local_links(page: Path) -> list[str]:
    targets = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
            continue  # http:, https:, mailto: ...
        targets.append(target)
    return targets


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in local_links(page):
        path_part, _, anchor = target.partition("#")
        file = (page.parent / unquote(path_part)).resolve() if path_part else page
        if "shared" in Path(unquote(path_part)).parts:
            problems.append(f"{target}: a user's clone has no shared/ folder")
            continue
        if not file.exists():
            problems.append(f"{target}: no such file {file}")
            continue
        if anchor and file.suffix == ".md" and unquote(anchor) not in anchors(file):
            problems.append(f"{target}: no heading #{anchor} in {file.name}")
    return problems


def test_pages_are_found():
    assert (REPO / "README.md") in PAGES and len(PAGES) > 1


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_local_links_and_images_resolve(page: Path):
    assert broken_links(page) == [], f"{page.relative_to(REPO)}: broken links"


def test_the_check_finds_a_broken_link_and_anchor(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Two words\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text("![pic](docs/missing.png) [ok](docs/a.md#two-words) [bad](docs/a.md#three-words)\n"
                    "[self](#nothing) `[code](docs/none.md)`\n\n```\n[fenced](docs/none.md)\n```\n", encoding="utf-8")
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert any("missing.png" in p for p in problems)
    assert any("three-words" in p for p in problems)
    assert any("#nothing" in p for p in problems)


def test_readme_points_users_at_no_shared_folder():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "../shared" not in text and "/work/shared" not in text
