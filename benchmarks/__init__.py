"""Benchmark scripts: mu-eval's fast paths side by side with the reference way, on one GPU (see
docs/performance.md). Run as modules from the repository root, e.g. `python -m benchmarks.bench_scoring`."""
