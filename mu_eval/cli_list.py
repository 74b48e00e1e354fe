"""`mu-eval list tasks|methods|attacks|metrics|backends|plugins`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mu_eval.plugins import get_registry

KINDS = ("tasks", "methods", "attacks", "metrics", "backends")


def describe(entry_obj: object) -> str:
    text = getattr(entry_obj, "description", "") or (getattr(entry_obj, "__doc__", "") or "")
    return text.strip().splitlines()[0] if text.strip() else ""


def main(argv: Sequence[str]) -> int:
    what = argv[0] if argv else "plugins"
    if what not in (*KINDS, "plugins"):
        print(f"mu-eval: error: cannot list {what!r}; choose from {', '.join((*KINDS, 'plugins'))}", file=sys.stderr)
        return 2
    registry = get_registry()
    if what == "plugins":
        for name, info in sorted(registry.plugins.items()):
            source = f" ({info.distribution})" if info.distribution else ""
            if info.error:
                print(f"{name}{source}: FAILED TO LOAD: {info.error}")
                continue
            parts = [f"{kind}: {', '.join(sorted(names))}" for kind, names in sorted(info.registered.items())]
            print(f"{name}{source}: {'; '.join(parts) or 'nothing registered'}")
        return 0
    for name in registry.names(what):
        entry = registry.get(what, name)
        summary = describe(entry.obj)
        print(f"{name}\t[{entry.plugin}]\t{summary}" if summary else f"{name}\t[{entry.plugin}]")
    return 0
