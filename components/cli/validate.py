"""``cdn-prefetch validate [PATH...]``: declarations against the schema, offline (no cloud call, no origin
listing), every problem as ``file:line: path: what and how to fix`` (declare/declarations.py's own)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..declare.declarations import DECLARATION_SUFFIXES, load_sets, parse_file
from ..declare.model import DeclarationError, Problem


def validate(paths: Iterable[Path]) -> tuple[int, list[Problem]]:
    """(sets found valid, problems) for files and folders; a folder is loaded as the program loads it
    (so two sets of one name are caught), a file on its own (what pre-commit hands over)."""
    valid, problems = 0, []
    for path in paths:
        if path.is_dir():
            try:
                valid += len(load_sets(path))
            except DeclarationError as exc:
                problems.extend(exc.problems)
        elif not path.exists():
            problems.append(Problem(str(path), None, "", "no such file or folder"))
        elif path.suffix.lower() not in DECLARATION_SUFFIXES:
            problems.append(Problem(str(path), None, "", f"not a declaration ({', '.join(DECLARATION_SUFFIXES)})"))
        else:
            decl, found = parse_file(path)
            problems.extend(found)
            valid += decl is not None and not found
    return valid, problems
