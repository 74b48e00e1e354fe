"""WMDP (bio, chem, cyber) and MMLU multiple choice, lm-evaluation-harness prompts (docs/tasks-muse-wmdp-rwku.md)."""
