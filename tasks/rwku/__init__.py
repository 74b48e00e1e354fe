"""RWKU: real-world knowledge unlearning of 200 famous people (benchmarks.md §4)."""
