"""The Pulumi program: stack config -> declarations -> one PrefetchSet per set -> the audit output."""

from __future__ import annotations

import pulumi

from .declarations import DeclarationError, load_sets
from .prefetch_set import PrefetchSet, stack_record

DEFAULT_SETS_DIR = "prefetch-sets"


def main() -> None:
    config = pulumi.Config("cdn-prefetch")
    sets_dir = config.get("setsDir") or DEFAULT_SETS_DIR
    try:
        declarations = load_sets(sets_dir)
    except DeclarationError as exc:
        # RunError: the CLI prints the message without a Python traceback.
        raise pulumi.RunError(str(exc)) from None
    sets = {}
    for decl in declarations:
        if decl.duplicates:
            pulumi.log.warn(f"{decl.source}: {len(decl.duplicates)} duplicate targets collapsed "
                            f"(e.g. {decl.duplicates[0]})")
        sets[decl.name] = PrefetchSet(decl).audit
    pulumi.export("prefetch", stack_record(sets))
