"""MU-Bench (Cheng & Amiri 2024): classifier and generator unlearning across modalities.

Tasks `mubench_<data>` for CIFAR-10/100, IMDB, DDI-2013, Speech Commands, NLVR2 and UCF101 (the
`classifier` backend), and `mubench_samsum`, `mubench_celeb_profile` for generation. See docs/mu-bench.md.
"""
