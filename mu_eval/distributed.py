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


def launched_as_helper() -> bool:
    """Whether this is one of the launched processes other than the main one (read from the launcher's
    environment, before any process group exists): its warnings would repeat the main process's."""
    return launched_in_parallel() and os.environ.get("RANK", "0") != "0"


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

    def wait_for_everyone(self) -> None:
        """Returns once every process has reached this point (the others wait while the main one writes)."""
        if self.size > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()

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
    state = joined_state()
    return Processes(state.process_index, state.num_processes, str(state.device))


def joined_state() -> Any:
    """accelerate's `PartialState` for the launched processes: it joins their process group and gives each
    its device (on the CPU accelerate joins the group only when told that no accelerator is there)."""
    import torch
    from accelerate import PartialState

    accelerator = getattr(torch, "accelerator", None)  # torch 2.6 and later
    found = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    return PartialState(cpu=not found)


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


class ParallelTrainingError(ValueError):
    """A training set-up the data-parallel loop cannot run exactly (an unsupported accelerate config, an
    accumulation that does not split evenly among the processes)."""


@dataclass(frozen=True)
class TrainingProcesses:
    """The processes one training run is shared among: accelerate's `PartialState` joined their group; each
    runs its share of every optimizer step's micro-batches and the gradients are summed across them. With
    `sharded`, an FSDP config: the model is sharded across them too (`mu_eval.sharded_training`)."""

    state: Any
    rank: int
    size: int
    sharded: bool = False

    def sum_gradients(self, parameters: Sequence[Any]) -> None:
        """Each parameter's gradient summed over the processes, in place. A parameter that no process's
        micro-batches reached keeps no gradient (the optimizer skips it, as in one process); one that only
        some reached gets zeros from the others, so every process joins every reduction."""
        import torch
        import torch.distributed as dist

        reached = torch.tensor([p.grad is not None for p in parameters], dtype=torch.int32,
                               device=self.state.device)
        dist.all_reduce(reached, op=dist.ReduceOp.SUM)
        for parameter, count in zip(parameters, reached.tolist()):
            if not count:
                continue
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            self._in_place(parameter.grad, lambda t: dist.all_reduce(t, op=dist.ReduceOp.SUM))

    def sum_value(self, value: Any) -> float:
        """A float summed over the processes."""
        import torch
        import torch.distributed as dist

        total = torch.tensor([float(value)], dtype=torch.float64, device=self.state.device)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return float(total.item())

    def broadcast_model(self, model: Any) -> None:
        """The main process's parameters and buffers on every process, as DDP starts: the replicas begin equal
        whatever each process loaded or initialised."""
        broadcast_from_main(model, self.state.device)

    def _in_place(self, tensor: Any, collective: Any) -> None:
        _in_place(tensor, self.state.device, collective)


def broadcast_from_main(model: Any, device: Any) -> None:
    """The main process's parameters and buffers copied into every process's model, in place, through the
    group's `device`."""
    import torch.distributed as dist

    for tensor in [*model.parameters(), *model.buffers()]:
        _in_place(tensor.data, device, lambda t: dist.broadcast(t, src=0))


def _in_place(tensor: Any, device: Any, collective: Any) -> None:
    """`collective` on `tensor`, through the group's device when the tensor lies elsewhere (a model kept on the
    CPU while NCCL joins the processes)."""
    import torch

    if tensor.device == torch.device(device):
        collective(tensor)
        return
    moved = tensor.to(device)
    collective(moved)
    tensor.copy_(moved)


def refuse_unapplied_settings() -> None:
    """Refuses what an accelerate config asks for that no training here applies: mixed precision (with one
    process too), and DeepSpeed or Megatron-LM in launched processes."""
    check_mixed_precision()
    sharding = requested_sharding() if launched_in_parallel() else None
    if sharding in REFUSED_LAUNCHES.values():
        raise sharding_refusal(str(sharding))


def check_launch(method_name: str, method_kind: str) -> None:
    """Refuses, before any process waits for another, what the launcher's accelerate config asks for and a
    method would not do: mixed precision, DeepSpeed or Megatron-LM, and any sharding for a method that trains
    outside the shared loop (kind other than "llm")."""
    refuse_unapplied_settings()
    sharding = requested_sharding() if launched_in_parallel() else None
    if sharding is not None and method_kind != "llm":
        raise ParallelTrainingError(
            f"the accelerate config asks for {sharding}, but method {method_name!r} trains each process's whole "
            "model outside the shared training loop, so nothing would be sharded; launch with a multi-GPU config "
            "(plain data-parallel) instead")


def requested_sharding() -> str | None:
    """The sharding engine the launcher's accelerate config asks for (FSDP, DeepSpeed, Megatron-LM), or None."""
    from mu_eval.sharded_training import requested_setting

    engines = {"ACCELERATE_USE_FSDP": "FSDP", **REFUSED_LAUNCHES}
    return next((name for variable, name in engines.items() if requested_setting(variable)), None)


#: What `accelerate launch` sets from a config whose engine the loop does not run, and the name of each.
REFUSED_LAUNCHES = {"ACCELERATE_USE_DEEPSPEED": "DeepSpeed", "ACCELERATE_USE_MEGATRON_LM": "Megatron-LM"}


def sharding_refusal(kind: str) -> ParallelTrainingError:
    """The one-line refusal of a DeepSpeed or Megatron-LM config (`kind` as accelerate names it)."""
    return ParallelTrainingError(
        f"the accelerate config asks for {kind}, which mu-eval's training loop does not run: it trains "
        "data-parallel (distributed_type: MULTI_GPU, or --multi_gpu) or fully sharded with torch's FSDP2 "
        "(distributed_type: FSDP); launch with one of those configs instead")


def check_mixed_precision() -> None:
    """Refuses an accelerate config's mixed precision, which the loop would otherwise silently not apply (it
    trains in the dtype the model was loaded in). Read whether or not several processes were started:
    `accelerate launch` with one process sets it too."""
    value = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").strip().lower()
    if value not in ("no", ""):
        raise ParallelTrainingError(
            f"the accelerate config asks for mixed_precision={value}, which mu-eval's training loop does not "
            "apply: it trains in the dtype the model is loaded in; set mixed_precision: 'no' and load the model "
            "in the precision wanted (--model-args dtype=bfloat16)")


def training_processes() -> TrainingProcesses | None:
    """The training processes a launcher started (None in a single process, where the loop runs exactly as it
    always has), sharded under an FSDP config. DeepSpeed and Megatron-LM configs are refused. The config is
    read from the launcher's environment as well as from accelerate's state, because accelerate applies
    none of these to CPU processes: it would start plain replicas, and the run would silently not be the
    one configured."""
    refuse_unapplied_settings()
    if not launched_in_parallel():
        return None
    from mu_eval.sharded_training import ShardingError, check_settings, requested_setting

    try:  # before joining the group: a refusal then leaves no process waiting for this one
        if requested_setting("ACCELERATE_USE_FSDP"):
            check_settings()
    except ShardingError as error:
        raise ParallelTrainingError(str(error)) from None
    from accelerate.utils import DistributedType

    # not `Accelerator`: its FSDP plugin (built from the same environment) wants an accelerator in older
    # accelerate releases, and the loop needs nothing of it beyond the process group and the device
    state = joined_state()
    if state.distributed_type in (DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM):
        raise sharding_refusal(state.distributed_type.value)
    sharded = requested_setting("ACCELERATE_USE_FSDP")
    return TrainingProcesses(state, state.process_index, state.num_processes, sharded)
