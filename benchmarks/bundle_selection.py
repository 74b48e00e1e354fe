"""Which of mu-eval's dependencies the GPU bundle must carry, given what the GPU machine already has.

Split from `benchmarks.gpu_bundle` (which downloads and writes the wheels) so that the choice can be tested
without the package index. Everything is read from the installed metadata of this environment (the project's
pins): the requirement graph, its version specifiers and the versions the bundle would carry.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

#: What the GPU machine brings; everything these need comes with them there.
PROVIDED = ("torch", "transformers")
ROOT = "mu-eval"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_graph(roots: tuple[str, ...] | list[str]) -> dict[str, tuple[str, list[Requirement]]]:
    """{canonical name: (installed version, its requirements)} for the roots and everything they require (no
    extras; markers evaluated here); a requirement that is not installed is an error."""
    graph: dict[str, tuple[str, list[Requirement]]] = {}
    stack = list(roots)
    while stack:
        name = stack.pop()
        if canonical(name) in graph:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError as error:
            raise SystemExit(f"gpu_bundle: {name} is required but not installed here; run this in the project's "
                             "virtual environment (pip install -c constraints.txt -e .)") from error
        requirements = [requirement for requirement in map(Requirement, distribution.requires or [])
                        if requirement.marker is None or requirement.marker.evaluate({"extra": ""})]
        graph[canonical(name)] = (distribution.version, requirements)
        stack.extend(requirement.name for requirement in requirements)
    return graph


def requirement_closure(roots: tuple[str, ...] | list[str]) -> dict[str, str]:
    """{canonical name: installed version} of the roots and everything they require."""
    return {name: version for name, (version, _) in requirement_graph(roots).items()}


def read_freeze(path: Path) -> dict[str, str]:
    """{canonical name: version} from `pip freeze` or `pip list --format=freeze` output ("name==version"
    lines; others, such as "name @ URL", are skipped, so those distributions count as absent)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, separator, version = line.strip().partition("==")
        if separator and name and not name.startswith("#"):
            found[canonical(name)] = version.lstrip("=").strip()
    return found


@dataclass
class Selection:
    """bundle: {name: version here} to carry; left_out: {name: the machine's version} it has and may keep;
    incompatible: {name: why the machine's version does not do}, each of them carried all the same."""

    bundle: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    incompatible: dict[str, str] = field(default_factory=dict)


def _fits(version: str, specifier: SpecifierSet) -> bool:
    try:
        return specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def _walk(graph: dict[str, tuple[str, list[Requirement]]], assumed: set[str],
          left_out: set[str]) -> tuple[list[str], dict[str, list[tuple[str, SpecifierSet]]]]:
    """The distributions reached from mu-eval through those pip would install from the bundle (neither left
    out nor assumed to come with torch/transformers), and the specifiers those place on each one."""
    reached, stack = [ROOT], [ROOT]
    specifiers: dict[str, list[tuple[str, SpecifierSet]]] = {}
    while stack:
        parent = stack.pop()
        for requirement in graph[parent][1]:
            name = canonical(requirement.name)
            specifiers.setdefault(name, []).append((parent, requirement.specifier))
            if name not in reached:
                reached.append(name)
                if name not in left_out and name not in assumed:
                    stack.append(name)
    return reached, specifiers


def select(present: dict[str, str]) -> Selection:
    """What to carry for a machine that has `present` ({canonical name: version}; empty: torch, transformers
    and their dependencies only). A distribution is left out when the machine has it at a version that
    satisfies every specifier placed on it by mu-eval and the distributions carried (not by those left out:
    pip on the machine keeps its own version of them, with their own requirements, installed there); one the
    machine lists at another version is carried; one it does not list is carried unless torch or transformers
    bring it. Leaving one out can spare its requirements, so the choice is repeated until it settles."""
    graph = requirement_graph([ROOT])
    assumed = set(requirement_closure(list(PROVIDED))) - set(present)
    left_out: set[str] = set()
    while True:
        reached, specifiers = _walk(graph, assumed, left_out)
        fitting = {name for name in reached[1:] if name in present
                   and all(_fits(present[name], specifier) for _, specifier in specifiers[name])}
        if fitting == left_out:
            break
        left_out = fitting
    selection = Selection()
    for name in sorted(reached[1:]):
        if name in left_out:
            selection.left_out[name] = present[name]
        elif name not in assumed:
            selection.bundle[name] = graph[name][0]
            if name in present:
                needs = "; ".join(f"{specifier or 'any'} (by {parent})" for parent, specifier in specifiers[name]
                                  if not _fits(present[name], specifier))
                selection.incompatible[name] = f"the machine's {present[name]} does not satisfy {needs}"
    clash = {name: selection.incompatible[name] for name in PROVIDED if name in selection.incompatible}
    if clash:
        raise SystemExit(f"gpu_bundle: the GPU machine must provide {' and '.join(clash)} at a version mu-eval "
                         f"supports: {'; '.join(f'{name}: {why}' for name, why in clash.items())}")
    return selection
