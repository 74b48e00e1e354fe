"""`mu-eval list tasks|methods|attacks|metrics|backends|plugins`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mu_eval.plugins import get_registry

KINDS = ("tasks", "methods", "attacks", "metrics", "backends")


def describe(entry_obj: object) -> str:
    text = getattr(entry_obj, "description", "") or (getattr(entry_obj, "__doc__", "") or "")
    return text.strip().splitlines()[0] if text.strip() else ""


class ListParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """One line and exit status 2, in the wording of the other commands."""
        self.exit(2, f"mu-eval: error: {message}\n")


def build_parser() -> ListParser:
    parser = ListParser(prog="mu-eval list", description="List what the installed plugins provide.")
    parser.add_argument("what", nargs="?", default="plugins", metavar="{" + ",".join((*KINDS, "plugins")) + "}",
                        help="what to list (default: plugins, with what each registers)")
    return parser


def main(argv: Sequence[str]) -> int:
    what = build_parser().parse_args(list(argv)).what
    if what not in (*KINDS, "plugins"):
        print(f"mu-eval: error: cannot list {what!r}; choose from {', '.join((*KINDS, 'plugins'))}", file=sys.stderr)
        return 2
    print_listing(what)
    return 0


def print_listing(what: str) -> None:
    registry = get_registry()
    if what == "plugins":
        for name, info in sorted(registry.plugins.items()):
            source = f" ({info.distribution})" if info.distribution else ""
            if info.error:
                print(f"{name}{source}: FAILED TO LOAD: {info.error}")
                continue
            parts = [f"{kind}: {', '.join(sorted(names))}" for kind, names in sorted(info.registered.items())]
            refused = [f"refused {kind} (built-in names): {', '.join(sorted(names))}"
                       for kind, names in sorted(info.refused.items())]
            print(f"{name}{source}: {'; '.join(parts + refused) or 'nothing registered'}")
        return
    for name in registry.names(what):
        entry = registry.get(what, name)
        summary = describe(entry.obj)
        print(f"{name}\t[{entry.plugin}]\t{summary}" if summary else f"{name}\t[{entry.plugin}]")
