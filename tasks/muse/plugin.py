"""Registers the MUSE tasks through the `mu_eval` entry points, as any third-party plugin would."""

from __future__ import annotations

from mu_eval.plugins import hookimpl

from .task import MuseBooks, MuseNews


@hookimpl
def register_tasks(register):
    register(MuseNews)
    register(MuseBooks)
