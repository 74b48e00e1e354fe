"""MUSE (News and Books): verbatim memorisation, knowledge memorisation and privacy leakage (benchmarks.md §2)."""
