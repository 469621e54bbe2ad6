"""The documentation stays true: every Python block runs, figures render, links resolve, the API is covered.

Convention for code blocks in README.md and docs/*.md (also in docs/contributing.md):

- Every ```python block is a complete program: it runs as pasted, in a fresh process whose working
  directory is an empty temporary directory (imports included; data it needs it writes itself, e.g.
  with ``write_lerobot_dataset`` into a ``tempfile.TemporaryDirectory()`` or the cwd).
- What it prints is shown in a ```text block directly after it (only blank lines in between). The
  test compares line by line after ``rstrip``, ignoring trailing blank lines. In an expected line,
  ``...`` matches any text within that line; a line that is exactly ``...`` matches any number of
  lines (use both only for values that really vary: timings, temporary paths).
- A block that prints something must show it; a block without a ```text block must print nothing.
- Anything that is not a runnable program (signatures, shell commands, pseudo-code, fragments) is not
  fenced as ```python: use ```text, ```bash or a bare fence.

Set ``DOCS_FRESH=1`` to start a brand-new interpreter per block instead of forking a preloaded one
(see ``tests/helpers/doc_runner.py``; same semantics, ~2 s more per block).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import episode_sampler

ROOT = Path(__file__).resolve().parents[2]
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
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


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


@pytest.mark.slow
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


# ----------------------------------------------------------------------------------------------
# Every ```python block runs as pasted and prints what the page shows.

_FENCE_LINE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    end: int  # 1-based line of the closing fence

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """Fenced code blocks of a markdown file, in order, with their info string's first word."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE_LINE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        lang = (m["info"].split() or [""])[0].lower()
        body, j = [], i + 1
        while j < len(lines):
            close = _FENCE_LINE.match(lines[j])
            if close and close["fence"][0] == fence[0] and len(close["fence"]) >= len(fence):
                if not close["info"]:
                    break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        blocks.append(Block(path, i + 1, lang, "\n".join(body) + "\n", j + 1))
        i = j + 1
    return blocks


def python_blocks() -> list[tuple[Block, Block | None]]:
    """Each ```python block with the ```text block directly after it (or None)."""
    out = []
    for page in markdown_files():
        blocks = fenced_blocks(page)
        lines = page.read_text(encoding="utf-8").splitlines()
        for k, block in enumerate(blocks):
            if block.lang != "python":
                continue
            nxt = blocks[k + 1] if k + 1 < len(blocks) else None
            between = lines[block.end : nxt.line - 1] if nxt else []
            if nxt is None or nxt.lang != "text" or any(s.strip() for s in between):
                nxt = None
            out.append((block, nxt))
    return out


def expected_lines(text: str) -> list[str]:
    lines = [s.rstrip() for s in text.splitlines()]
    if lines and lines[0].strip() == "# Output:":
        lines = lines[1:]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Line-by-line equality, with ``...`` wildcards (within a line; a whole ``...`` line: any lines)."""
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*".join(re.escape(p) for p in line.split("...")) + r"\n")
    return re.fullmatch("".join(parts), "".join(s + "\n" for s in actual)) is not None


BLOCKS = python_blocks()


@pytest.fixture(scope="module")
def block_results():
    """Run every block once (in parallel, tests/helpers/doc_runner.py): id -> (returncode, stdout, stderr)."""
    with tempfile.TemporaryDirectory(prefix="docblocks-") as tmp:
        jobs = []
        for n, (block, _) in enumerate(BLOCKS):
            work = Path(tmp) / f"b{n:03d}"
            work.mkdir()
            script = Path(tmp) / f"b{n:03d}.py"  # outside the cwd: a block starts in an empty directory
            script.write_text(block.code, encoding="utf-8")
            jobs.append({"id": block.id, "dir": str(work), "script": str(script)})
        jobs_file = Path(tmp) / "jobs.json"
        jobs_file.write_text(json.dumps(jobs), encoding="utf-8")
        cmd = [
            sys.executable,
            str(ROOT / "tests" / "helpers" / "doc_runner.py"),
            str(jobs_file),
            "--timeout",
            "120",
        ]
        if os.environ.get("DOCS_FRESH"):
            cmd.append("--fresh")
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        status = json.loads(proc.stdout)
        results = {}
        for job in jobs:
            st = status[job["id"]]
            work = Path(job["dir"])
            out = (work / "stdout").read_text(encoding="utf-8", errors="replace")
            err = (work / "stderr").read_text(encoding="utf-8", errors="replace")
            rc = "timeout" if st.get("timed_out") else st["returncode"]
            results[job["id"]] = (rc, out, err)
        return results


def test_there_are_python_blocks():
    assert len(BLOCKS) >= 10, [b.id for b, _ in BLOCKS]


@pytest.mark.slow
@pytest.mark.parametrize("pair", BLOCKS, ids=[b.id for b, _ in BLOCKS])
def test_python_block_runs_and_prints_what_is_shown(pair, block_results):
    block, shown = pair
    rc, out, err = block_results[block.id]
    assert rc == 0, f"{block.id} fails as pasted (exit {rc}):\n{err[-3000:]}"
    actual = expected_lines(out)
    if shown is None:
        assert not actual, (
            f"{block.id} prints output but shows none: add a ```text block right after it:\n" + out[-2000:]
        )
        return
    expected = expected_lines(shown.code)
    assert output_matches(expected, actual), (
        f"{block.id}: printed output differs from the ```text block at line {shown.line}\n"
        "--- shown\n" + "\n".join(expected) + "\n--- printed\n" + "\n".join(actual)
    )


def test_output_matching_rules():
    assert output_matches(["a", "b"], ["a", "b"])
    assert not output_matches(["a", "b"], ["a", "c"])
    assert not output_matches(["a"], ["a", "b"])
    assert output_matches(["took ... s"], ["took 0.3 s"])
    assert not output_matches(["took ... s"], ["took 0.3 s", "x"])
    assert output_matches(["start", "...", "end"], ["start", "x", "y", "end"])
    assert output_matches(["start", "...", "end"], ["start", "end"])
    assert not output_matches(["a.b"], ["axb"])  # only ``...`` is special


def test_fenced_blocks_parsing(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "x\n```python\nprint(1)\n```\n\n```text\n1\n```\n"
        "- item\n\n    ```python\n    print(2)\n    ```\n"
        "````markdown\n```python\nnot a block\n```\n````\n",
        encoding="utf-8",
    )
    blocks = fenced_blocks(page)
    assert [(b.lang, b.code) for b in blocks] == [
        ("python", "print(1)\n"),
        ("text", "1\n"),
        ("python", "print(2)\n"),
        ("markdown", "```python\nnot a block\n```\n"),
    ]


# ----------------------------------------------------------------------------------------------
# The docs site (mkdocs, material, mkdocstrings) builds in strict mode and documents every public name.


def test_reference_pages_document_every_public_name():
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((DOCS / "reference").glob("*.md")))
    documented = set(re.findall(r"^::: episode_sampler\.(\w+)", text, re.M))
    missing = sorted(set(episode_sampler.__all__) - documented - {"__version__"})
    assert not missing, f"add '::: episode_sampler.NAME' to a page in docs/reference/ for {missing}"


@pytest.mark.slow
def test_mkdocs_strict_build(tmp_path):
    """A broken link or anchor, a page missing from the nav or a nav entry without its page fails."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    problems = [line for line in proc.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert proc.returncode == 0, (
        "mkdocs build --strict failed (a new page goes into `nav:` in mkdocs.yml):\n"
        + "\n".join(problems or proc.stderr.splitlines()[-30:])
    )
    assert (tmp_path / "site" / "reference" / "sampler" / "index.html").is_file()


def test_readme_test_command_is_what_ci_runs():
    """The README's first block holds the two commands a newcomer runs; CI runs the second verbatim."""
    first = next(b for b in fenced_blocks(ROOT / "README.md"))
    commands = [line.strip() for line in first.code.splitlines() if line.strip()]
    assert commands == ["pip install -e . && episode-sampler demo", 'pip install -e ".[test]" && pytest']
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^\s*" + re.escape(commands[1]) + r"\s*$", ci, re.M), ".ci/run no longer runs it"
    assert "mkdocs build --strict" in ci


def test_python_code_is_fenced_as_python():
    """``py``/``python3`` fences would be highlighted as Python but skipped by the block test."""
    odd = [
        b.id for page in markdown_files() for b in fenced_blocks(page) if b.lang in {"py", "python3", "py3"}
    ]
    assert not odd, f"fence these as ```python (and make them run) or as ```text: {odd}"
