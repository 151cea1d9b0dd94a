"""The shape of the storage layer (issue 16): how many lines it has, and how much of it is written twice.

    python bench/storage_shape.py [--ref COMMIT]

Prints the Python lines under ``src/promopool/storage/`` (``wc -l``: every line, blank or not) and, of the
code lines in engine-specific files (``storage/sqlite/``, ``storage/postgres/``; blank lines and comments
left out), the share that stands identical in the other engine's files once placeholders (``?``, ``?1``,
``$1``, ``:name``), ``await``/``async`` and the engines' own names are normalised away: the copy that every
change to storage would otherwise have to make twice. ``--ref`` reads a commit instead of the work tree, so
a before and an after come from one command.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORAGE = "src/promopool/storage"
ENGINES = ("sqlite", "postgres")

_PLACEHOLDER = re.compile(r"\$\d+|\?\d*|:\w+\b")
_ASYNC = re.compile(r"\b(?:await|async)\s+")
_ENGINE_NAME = re.compile(r"sqlite3\.\w+|asyncpg\.\w+|SQLite|Postgres|sqlite|postgres")


def normalised(line: str) -> str:
    line = _PLACEHOLDER.sub("?", line.strip())
    return _ENGINE_NAME.sub("ENGINE", _ASYNC.sub("", line))


def sources(ref: str | None) -> dict[str, str]:
    """Every ``.py`` file under storage/, by path: from the work tree, or from commit ``ref``."""
    if ref is None:
        return {
            str(path.relative_to(ROOT)): path.read_text() for path in sorted((ROOT / STORAGE).rglob("*.py"))
        }
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", ref, STORAGE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        path: subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:{path}"], capture_output=True, text=True, check=True
        ).stdout
        for path in listed
        if path.endswith(".py")
    }


def code_lines(text: str) -> list[str]:
    return [
        normalised(line) for line in text.splitlines() if line.strip() and not line.strip().startswith("#")
    ]


def shape(files: dict[str, str]) -> tuple[int, int, int]:
    """(all lines, engine-specific code lines, those identical in the other engine)."""
    per_engine = {
        engine: [
            line
            for path, text in files.items()
            if path.startswith(f"{STORAGE}/{engine}/")
            for line in code_lines(text)
        ]
        for engine in ENGINES
    }
    identical = 0
    for engine, other in (ENGINES, ENGINES[::-1]):
        unmatched = Counter(per_engine[other])  # each line of the other engine matches at most once
        for line in per_engine[engine]:
            if unmatched[line] > 0:
                unmatched[line] -= 1
                identical += 1
    lines = sum(len(text.splitlines()) for text in files.values())
    return lines, sum(map(len, per_engine.values())), identical


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ref", help="a commit to read instead of the work tree")
    args = parser.parse_args()
    lines, engine_lines, identical = shape(sources(args.ref))
    print(f"Python lines under {STORAGE}/: {lines:,}")
    share = identical / engine_lines if engine_lines else 0.0
    print(
        f"engine-specific code lines: {engine_lines:,}; identical in the other engine: {identical:,}", end=""
    )
    print(f" ({share:.1%})")


if __name__ == "__main__":
    main()
