"""MUSE (News and Books): verbatim and knowledge memorisation and privacy leakage (docs/tasks-muse-wmdp-rwku.md)."""
