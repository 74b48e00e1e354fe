"""Fixtures of the RWKU tests (defined in rwku_support.py)."""

import pytest
from rwku_support import rwku_checkpoint, rwku_dir, rwku_names

__all__ = ["rwku_checkpoint", "rwku_dir", "rwku_names"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """On a shared machine two spinning intra-op threads slow these tiny models tens of times; restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
