"""Data-parallel processes, as `accelerate launch` or `torchrun` starts them: which one this is, how the
distinct requests of a run are shared among them, and gathering their answers.

accelerate's `PartialState` joins the process group the launcher describes in the environment (NCCL on
GPUs, gloo on the CPU) and gives each process its device; nothing here schedules anything itself.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def launched_in_parallel() -> bool:
    """Whether a launcher started several processes for this run (WORLD_SIZE above one)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


@dataclass(frozen=True)
class Processes:
    """This process among the run's data-parallel processes."""

    rank: int
    size: int
    device: str

    @property
    def is_main(self) -> bool:
        """The process that computes the metrics and writes reports, caches and models."""
        return self.rank == 0

    def gather(self, items: list[Any]) -> list[Any]:
        """Every process's `items`, concatenated in rank order, on every process."""
        if self.size == 1:
            return list(items)
        from accelerate.utils import gather_object

        return list(gather_object(list(items)))

    def broadcast(self, value: Any) -> Any:
        """The main process's `value`, on every process."""
        if self.size == 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]


def current_processes() -> Processes | None:
    """The data-parallel processes of this run when a launcher started several (joining their process group
    on first use), else None."""
    if not launched_in_parallel():
        return None
    import torch
    from accelerate import PartialState

    accelerator = getattr(torch, "accelerator", None)  # torch 2.6 and later
    found = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    state = PartialState(cpu=not found)  # on the CPU accelerate joins the group only when told to
    return Processes(state.process_index, state.num_processes, str(state.device))


def share_by_tokens(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Indices of `lengths` for each of `size` processes, balanced by total length: longest first, each to
    the process with the fewest tokens so far (ties to the lowest rank), so every process computes the same
    shares from the same lengths. Each process's indices keep their original order."""
    shares: list[list[int]] = [[] for _ in range(size)]
    loads = [(0, rank) for rank in range(size)]
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        load, rank = heapq.heappop(loads)
        shares[rank].append(index)
        heapq.heappush(loads, (load + max(lengths[index], 1), rank))
    return [sorted(share) for share in shares]
