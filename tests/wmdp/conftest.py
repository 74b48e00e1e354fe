"""Fixtures of the WMDP/MMLU tests (defined in wmdp_support.py)."""

from wmdp_support import letter_checkpoint, mmlu_dir, split_letter_checkpoint, wmdp_dir

__all__ = ["letter_checkpoint", "mmlu_dir", "split_letter_checkpoint", "wmdp_dir"]


