"""The README's results table, generated from a run, never copied by hand.

    python -m gift.readme                 # README.md's block <- results/default/tables/main.md
    python -m gift.readme --check         # exit 1 when the block differs from the run's table

The block lies between two marker lines; it is the run's ``main.md`` as the ``table`` rule wrote it (the
Markdown table and its caption), so a test can compare the two byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .io import write_text

BEGIN = "<!-- main-table: written by `python -m gift.readme` from results/default/tables/main.md -->"
END = "<!-- end of main-table -->"
TABLE = "results/default/tables/main.md"


class ReadmeError(ValueError):
    pass


def _bounds(readme: str) -> tuple[int, int]:
    lines = readme.split("\n")
    starts = [i for i, ln in enumerate(lines) if ln.strip() == BEGIN]
    ends = [i for i, ln in enumerate(lines) if ln.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] <= starts[0]:
        raise ReadmeError(f"README: expected one '{BEGIN}' line followed by one '{END}' line")
    return starts[0], ends[0]


def block(readme: str) -> str:
    """The text between the markers (without them), as the run's ``main.md`` holds it."""
    a, b = _bounds(readme)
    inner = readme.split("\n")[a + 1 : b]
    return "\n".join(inner).strip("\n") + "\n"


def check_block(text: str) -> list[str]:
    """What is wrong with a block's form: one Markdown table (a header, a separator row, at least one row,
    every row with the header's number of cells) followed by a caption."""
    lines = [ln for ln in text.strip("\n").split("\n")]
    rows = [ln for ln in lines if ln.startswith("|")]
    problems = []
    if len(rows) < 3:
        problems.append("no Markdown table with a header, a separator and a row")
        return problems
    first = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    table = lines[first : first + len(rows)]
    if table != rows:
        problems.append("the table's rows are not consecutive")
    width = table[0].count("|")
    if any(ln.count("|") != width for ln in table):
        problems.append("a row's number of cells differs from the header's")
    if not set(table[1].replace("|", "").strip()) <= set("-: "):
        problems.append("the second line is not the separator row")
    if "method" not in table[0]:
        problems.append("the header has no 'method' column")
    if not [ln for ln in lines[first + len(rows) :] if ln.strip()]:
        problems.append("no caption after the table")
    return problems


def replace_block(readme: str, table_md: str) -> str:
    a, b = _bounds(readme)
    lines = readme.split("\n")
    return "\n".join(lines[: a + 1] + table_md.strip("\n").split("\n") + lines[b:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gift.readme", description=__doc__.split("\n\n")[0])
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--table", default=TABLE, help=f"the run's main table (default {TABLE})")
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when they differ")
    args = ap.parse_args(argv)
    readme = Path(args.readme).read_text(encoding="utf-8")
    table = Path(args.table)
    if not table.exists():
        print(f"{args.table}: no such file: run the workflow first (snakemake --cores all)", file=sys.stderr)
        return 1
    problems = check_block(table.read_text(encoding="utf-8"))
    if problems:
        print(f"{args.table}: {problems[0]}", file=sys.stderr)
        return 1
    new = replace_block(readme, table.read_text(encoding="utf-8"))
    if args.check:
        same = new == readme
        print(f"{args.readme}: the table block {'equals' if same else 'differs from'} {args.table}", file=sys.stderr)
        return 0 if same else 1
    if new != readme:
        write_text(args.readme, new)
    print(f"{args.readme}: table block from {args.table}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
