"""README and docs pages as a new user reads them (issue 20, "rough edges")."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_lists_every_example() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    (row,) = [ln for ln in text.splitlines() if ln.startswith("| `examples/` |")]
    listed = set(re.findall(r"`(\w+\.py)`", row))
    assert listed == {p.name for p in (ROOT / "examples").glob("*.py")}
    assert "mixture.py" in listed


def test_torchdata_page_opens_with_what_a_user_gets() -> None:
    text = (ROOT / "docs" / "torchdata.md").read_text(encoding="utf-8")
    intro = text.split("```", 1)[0]
    first = intro.split("\n\n")[1]  # the paragraph after the title
    for internal in ("ShardedOrder", "EpochPass", "codec"):
        assert internal not in first
    assert "What you get:" in first
    assert intro.index("What you get:") < intro.index("ShardedOrder")  # internals come after


def test_lerobot_migration_two_processes_section_has_no_hand_written_spec() -> None:
    text = (ROOT / "docs" / "lerobot-migration.md").read_text(encoding="utf-8")
    section = text.split("## Two processes", 1)[1].split("\n## ", 1)[0]
    assert "spec.json" not in section and "tests/accelerate_flow.py" not in section
    assert "torchrun --standalone --nproc-per-node 2 examples/accelerate_two_processes.py" in section
