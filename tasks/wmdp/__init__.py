"""WMDP (bio, chem, cyber) and MMLU multiple-choice tasks, lm-evaluation-harness prompts (benchmarks.md §3)."""
