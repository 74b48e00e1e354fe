"""Plugin system: pluggy hook specifications, entry-point loading and the registry they fill."""

from mu_eval.plugins.hookspecs import hookimpl, hookspec
from mu_eval.plugins.registry import DuplicateNameError, Registry, UnknownNameError, get_registry

__all__ = ["hookimpl", "hookspec", "Registry", "DuplicateNameError", "UnknownNameError", "get_registry"]
