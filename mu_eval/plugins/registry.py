"""The registry of everything plugins provide, filled once per process from the `mu_eval` entry points.

mu-eval's own plugins (the entry points of the `mu-eval` distribution) load first. One of them failing is a
broken installation, hence an error; a third-party plugin failing is a warning and the run goes on without
it. A third-party plugin that registers a name a built-in has is refused for that name, with a warning
naming both packages; two third-party plugins registering one name is an error naming both.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from mu_eval.attack import Attack
from mu_eval.backend import Backend
from mu_eval.method import Method
from mu_eval.plugins import hookspecs
from mu_eval.plugins.hookspecs import HOOK_KINDS, PROJECT_NAME
from mu_eval.task import Task

ENTRY_POINT_GROUP = "mu_eval"
#: The distribution whose entry points are the built-in plugins.
BUILTIN_DISTRIBUTION = "mu-eval"


class DuplicateNameError(Exception):
    """Two plugins registered the same name for the same kind."""


class PluginLoadError(Exception):
    """One of mu-eval's own plugins failed to load or register: the installation is broken."""


class UnknownNameError(KeyError):
    """A task, method, attack, metric or backend name that no plugin registered."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.4)
        hint = f"; closest: {', '.join(close)}" if close else ""
        listing = f"; known: {', '.join(sorted(known))}" if not close and known else ""
        self.message = f"unknown {kind[:-1]} {name!r}{hint}{listing}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass
class Entry:
    name: str
    obj: Any
    plugin: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PluginInfo:
    name: str
    distribution: str | None
    registered: dict[str, list[str]] = field(default_factory=dict)
    #: Names refused because a built-in plugin already provides them.
    refused: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


class Registry:
    """Names to objects per kind, with the plugin that registered each."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in HOOK_KINDS.values()}
        self.plugins: dict[str, PluginInfo] = {}
        self.manager = pluggy.PluginManager(PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)

    # -- loading -------------------------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        points = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
        points.sort(key=lambda point: not _is_builtin(point.dist.name if point.dist else None))
        for entry_point in points:
            distribution = entry_point.dist.name if entry_point.dist else None
            try:
                module = entry_point.load()
            except Exception as error:  # a broken plugin must not take the others down
                if _is_builtin(distribution):
                    raise PluginLoadError(f"mu-eval's own plugin {entry_point.name!r} failed to load: "
                                          f"{type(error).__name__}: {error}") from error
                self.plugins[entry_point.name] = PluginInfo(entry_point.name, distribution, error=repr(error))
                warnings.warn(
                    f"mu-eval plugin {entry_point.name!r} (from {distribution or 'unknown distribution'}) "
                    f"failed to load and was skipped: {type(error).__name__}: {error}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            self.add_plugin(module, entry_point.name, distribution)

    def add_plugin(self, module: Any, name: str, distribution: str | None = None) -> None:
        """Register one plugin object (a module or instance with hook implementations)."""
        info = PluginInfo(name, distribution)
        self.plugins[name] = info
        self.manager.register(module, name=name)
        others = [p for p in self.manager.get_plugins() if p is not module]
        try:
            for hook_name, kind in HOOK_KINDS.items():
                caller = self.manager.subset_hook_caller(hook_name, remove_plugins=others)
                caller(register=self._register_callback(kind, name))
        except DuplicateNameError:
            raise
        except Exception as error:  # a plugin failing inside its hook must not take the others down
            self._withdraw(name)
            info.error = repr(error)
            if _is_builtin(distribution):
                raise PluginLoadError(f"mu-eval's own plugin {name!r} failed while registering: "
                                      f"{type(error).__name__}: {error}") from error
            warnings.warn(
                f"mu-eval plugin {name!r} (from {distribution or 'unknown distribution'}) failed while "
                f"registering and was skipped: {type(error).__name__}: {error}",
                RuntimeWarning,
                stacklevel=2,
            )

    def _withdraw(self, plugin: str) -> None:
        """Remove everything a plugin registered (it failed half-way)."""
        for kind, names in self.plugins[plugin].registered.items():
            for entry_name in names:
                self.entries[kind].pop(entry_name, None)
        self.plugins[plugin].registered = {}

    def _register_callback(self, kind: str, plugin: str) -> Callable[..., None]:
        def register(obj: Any, name: str | None = None, **extra: Any) -> None:
            entry_name = name or getattr(obj, "name", None)
            if not entry_name:
                raise ValueError(f"plugin {plugin!r} registered a {kind[:-1]} without a name: {obj!r}")
            existing = self.entries[kind].get(entry_name)
            if existing is not None:
                if self._builtin(existing.plugin) and not self._builtin(plugin):
                    warnings.warn(
                        f"plugin {plugin!r} (from {self.plugins[plugin].distribution}) registers the {kind[:-1]} "
                        f"{entry_name!r}, which mu-eval's plugin {existing.plugin!r} (from "
                        f"{self.plugins[existing.plugin].distribution}) already provides; the "
                        "built-in is kept and the plugin's is ignored (rename it in the plugin)",
                        RuntimeWarning, stacklevel=2,
                    )
                    self.plugins[plugin].refused.setdefault(kind, []).append(entry_name)
                    return
                raise DuplicateNameError(
                    f"{kind[:-1]} {entry_name!r} is registered by both plugin {existing.plugin!r} "
                    f"({self.plugins[existing.plugin].distribution}) and plugin {plugin!r} "
                    f"({self.plugins[plugin].distribution})"
                )
            self.entries[kind][entry_name] = Entry(entry_name, obj, plugin, extra)
            self.plugins[plugin].registered.setdefault(kind, []).append(entry_name)

        return register

    def _builtin(self, plugin: str) -> bool:
        return _is_builtin(self.plugins[plugin].distribution)

    # -- lookup --------------------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Entry:
        try:
            return self.entries[kind][name]
        except KeyError:
            raise UnknownNameError(kind, name, list(self.entries[kind])) from None

    def task(self, name: str, **options: Any) -> Task:
        return self.get("tasks", name).obj(**options)

    def task_options(self, name: str) -> type | None:
        """The options dataclass a task declares (its class's `Options`, or a factory's `options=`)."""
        entry = self.get("tasks", name)
        return entry.extra.get("options") or getattr(entry.obj, "Options", None)

    def method(self, name: str) -> type[Method]:
        return self.get("methods", name).obj

    def attack(self, name: str) -> type[Attack]:
        return self.get("attacks", name).obj

    def backend(self, name: str) -> type[Backend]:
        return self.get("backends", name).obj

    def metric(self, name: str) -> Entry:
        return self.get("metrics", name)


_REGISTRY: Registry | None = None


def _is_builtin(distribution: str | None) -> bool:
    return distribution is not None and distribution.lower().replace("_", "-") == BUILTIN_DISTRIBUTION


def get_registry(reload: bool = False) -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _REGISTRY
    if _REGISTRY is None or reload:
        registry = Registry()
        registry.load_entry_points()
        _REGISTRY = registry
    return _REGISTRY
