"""The README's results table is generated from the run (gift.readme), never copied by hand: its block is
well-formed, and equals the default run's results/default/tables/main.md wherever that file exists."""

import subprocess
import sys
from pathlib import Path

import pytest

from gift.readme import BEGIN, END, ReadmeError, block, check_block, replace_block

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUN_TABLE = ROOT / "results" / "default" / "tables" / "main.md"
TABLE = """| method | problems | pass@1 (greedy) |
|:--|--:|:--|
| Base model | 3 | 33.3 [0.0, 100.0] |
| GiFT | 3 | 66.7 [0.0, 100.0]† |

Pass rates (%) on 3 held-out MBPP problems.
"""


def test_the_readme_block_is_well_formed():
    assert check_block(block(README.read_text())) == []


def test_the_readme_keeps_its_first_command_lines():
    first = README.read_text().split("\n")[:3]
    assert first[0].startswith("    ./install.sh && .venv/bin/snakemake --cores all")
    assert first[1].startswith("    ./install.sh && .venv/bin/python -m pytest -q")
    assert first[2].startswith('    .venv/bin/python -m pytest -q -m "not slow"')


@pytest.mark.skipif(not RUN_TABLE.exists(), reason="the default run's main.md is not in this checkout")
def test_the_readme_table_equals_the_runs_main_table():
    assert block(README.read_text()) == RUN_TABLE.read_text(), "regenerate it: python -m gift.readme"


def test_replace_then_read_gives_the_table_back():
    readme = f"intro\n\n{BEGIN}\nold\n{END}\n\nafter\n"
    new = replace_block(readme, TABLE)
    assert block(new) == TABLE and new.startswith("intro\n\n") and new.endswith(f"{END}\n\nafter\n")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("| method |\n|---|\n", "no Markdown table"),
        ("| method | a |\n|---|---|\n| x | 1 | 2 |\n\ncaption\n", "number of cells"),
        ("| method | a |\n| x | y |\n| x | 1 |\n\ncaption\n", "separator"),
        ("| method | a |\n|---|---|\n| x | 1 |\n", "no caption"),
    ],
)
def test_a_malformed_block_is_named(text, problem):
    assert any(problem in p for p in check_block(text)), check_block(text)


def test_missing_markers_are_an_error():
    with pytest.raises(ReadmeError):
        block("no markers here\n")
    with pytest.raises(ReadmeError):
        block(f"{END}\n{BEGIN}\n")


def test_the_command_writes_and_checks_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{BEGIN}\nold\n{END}\n")
    table = tmp_path / "main.md"
    table.write_text(TABLE)
    cmd = [sys.executable, "-m", "gift.readme", "--readme", str(readme), "--table", str(table)]
    check = subprocess.run([*cmd, "--check"], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 1 and "differs" in check.stderr
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).returncode == 0
    assert block(readme.read_text()) == TABLE
    assert subprocess.run([*cmd, "--check"], cwd=ROOT, capture_output=True, text=True).returncode == 0
