"""The documentation stays true: figures render, relative links resolve, the API reference is complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import episode_sampler

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FIGURES = (
    "concept_layout.png",
    "concept_windows.png",
    "concept_orders.png",
    "concept_sharding.png",
    "concept_elastic.png",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def _strip_code(text: str) -> str:
    """Markdown without fenced blocks; inline code spans kept as a placeholder (link text may be code)."""
    return _CODE_SPAN.sub("code", _FENCE.sub("", text))


def links(path: Path) -> list[str]:
    """Link and image targets of a markdown file, outside code."""
    return _LINK.findall(_strip_code(path.read_text(encoding="utf-8")))


def anchors(path: Path) -> set[str]:
    """GitHub-style heading anchors of a markdown file."""
    out = set()
    for title in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a linked heading keeps its text
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_render_figures_writes_every_png(tmp_path):
    image = pytest.importorskip("matplotlib.image")  # matplotlib is the "docs" extra
    np = pytest.importorskip("numpy")
    out = tmp_path / "img"
    proc = subprocess.run(
        [sys.executable, str(DOCS / "render_figures.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == sorted(FIGURES)
    for name in FIGURES:
        path = out / name
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert 5_000 < len(data) < 150_000, (name, len(data))
        pixels = image.imread(path)
        assert pixels.shape[0] >= 150 and pixels.shape[1] >= 600, (name, pixels.shape)
        colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
        assert len(colours) > 20, f"{name} looks blank ({len(colours)} colours)"


def test_committed_figures_exist_and_are_referenced():
    text = "\n".join(p.read_text(encoding="utf-8") for p in markdown_files())
    for name in FIGURES:
        path = DOCS / "img" / name
        assert path.is_file(), f"docs/img/{name} is missing: run python docs/render_figures.py"
        assert path.stat().st_size < 150_000, f"docs/img/{name} is larger than 150 KB"
        assert f"img/{name}" in text, f"docs/img/{name} is not used by any page"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(
                f"{target} (no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})"
            )
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)} has broken links: {broken}"


def test_api_reference_mentions_every_public_name():
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    missing = [
        name for name in episode_sampler.__all__ if not re.search(rf"(?<![\w.]){re.escape(name)}\b", text)
    ]
    assert not missing, f"docs/api.md does not mention {missing}"


def test_api_reference_has_a_heading_per_public_name():
    heads = anchors(DOCS / "api.md")
    missing = [n for n in episode_sampler.__all__ if n.lower() not in heads and n != "__version__"]
    assert not missing, f"docs/api.md has no section for {missing}"
