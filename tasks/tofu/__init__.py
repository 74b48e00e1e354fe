"""TOFU (Maini et al. 2024): fictitious-author unlearning, evaluated as docs/tofu.md describes.

`metrics` holds the pure aggregations (pinned by the golden test on the published logs), `sources` where
rows come from, `task` the requests and `results` the reported values.
"""
