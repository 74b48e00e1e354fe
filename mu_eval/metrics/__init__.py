"""Benchmark-independent metric functions: ROUGE variants, membership-inference scores, AUC and friends.

Metrics are pure functions of results (and of reference values); benchmark-specific aggregations live
with their tasks.
"""
