"""Fixtures of the RWKU tests (defined in rwku_support.py)."""

from rwku_support import rwku_checkpoint, rwku_dir, rwku_names

__all__ = ["rwku_checkpoint", "rwku_dir", "rwku_names"]


