"""Fixtures of the WMDP/MMLU tests (defined in wmdp_support.py)."""

import pytest
from wmdp_support import letter_checkpoint, mmlu_dir, split_letter_checkpoint, wmdp_dir

__all__ = ["letter_checkpoint", "mmlu_dir", "split_letter_checkpoint", "wmdp_dir"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """On a shared machine two spinning intra-op threads slow these tiny models tens of times; restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
