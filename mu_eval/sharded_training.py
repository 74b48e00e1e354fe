"""Fully sharded data-parallel training (FSDP2: torch's `fully_shard`) for the shared training loop.

Under an accelerate FSDP config, each process keeps only its shard of the trained model's parameters,
gradients and optimizer state, so a model whose training does not fit one device trains on several. The
loop shards the model itself, in place, with the same calls accelerate's FSDP2 makes (one unit per decoder
layer, then the root), rather than through `accelerator.prepare`: accelerate does not enable FSDP for CPU
processes, and this way the one code path that runs on GPUs (NCCL) is the one tested on the CPU (gloo).

In place matters: the methods' loss functions and hooks hold the model object and its modules. When the
steps are done, every process gathers the full weights and the model is handed back exactly as it came
(its classes, hooks, attributes and the very `Parameter` objects, now holding the trained values), so
evaluation and saving see a whole model, as after any other training.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

#: What an accelerate FSDP config sets that this loop cannot honour, each with why.
UNSUPPORTED_SETTINGS = {
    "FSDP_OFFLOAD_PARAMS": "parameter offloading to the CPU",
    "FSDP_ACTIVATION_CHECKPOINTING": "activation checkpointing",
}
TRUE = ("1", "y", "yes", "t", "true", "on")  # as accelerate reads its flags


class ShardingError(ValueError):
    """An FSDP set-up the loop cannot run (an unsupported setting, a model without decoder-layer classes)."""


def requested_setting(variable: str) -> bool:
    return os.environ.get(variable, "false").strip().lower() in TRUE


#: `fsdp_reshard_after_forward` as accelerate passes it on: a flag (FSDP2 configs) or FSDP1's strategy name.
RESHARD_SPELLINGS = {**{word: True for word in TRUE}, "full_shard": True, "hybrid_shard": True,
                     **{word: False for word in ("0", "n", "no", "f", "false", "off")}, "shard_grad_op": False,
                     "hybrid_shard_zero2": False}


def reshard_after_forward() -> bool:
    """Whether each unit's gathered weights are freed after its forward pass (FSDP's FULL_SHARD, the default)
    or kept for the backward pass (SHARD_GRAD_OP, ZeRO-2 style)."""
    value = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").strip().lower()
    if value not in RESHARD_SPELLINGS:
        raise ShardingError(f"the accelerate FSDP config asks for fsdp_reshard_after_forward={value}; mu-eval's "
                            "sharded training takes true (full_shard) or false (shard_grad_op); for no_shard "
                            "launch a multi-GPU config (plain data-parallel) instead")
    return RESHARD_SPELLINGS[value]


def check_settings() -> None:
    """Refuses, in one line, the FSDP settings of an accelerate config that this loop would ignore."""
    reshard_after_forward()
    for variable, what in UNSUPPORTED_SETTINGS.items():
        if requested_setting(variable):
            raise ShardingError(f"the accelerate FSDP config asks for {what} ({variable}), which mu-eval's sharded "
                                "training does not do; turn it off in the config")
    if os.environ.get("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP").strip().upper() not in (
            "TRANSFORMER_BASED_WRAP", ""):
        raise ShardingError(f"the accelerate FSDP config asks for fsdp_auto_wrap_policy="
                            f"{os.environ['FSDP_AUTO_WRAP_POLICY']}; mu-eval shards one unit per decoder layer "
                            "(TRANSFORMER_BASED_WRAP)")


def unit_classes(model: Any) -> set[str]:
    """Class names sharded as one unit each: the config's `fsdp_transformer_layer_cls_to_wrap`, else the
    model's `_no_split_modules` (its decoder layers), as accelerate's transformer-based wrapping picks them."""
    named = os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "").strip()
    names = {n.strip() for n in named.split(",") if n.strip()} or set(getattr(model, "_no_split_modules", None) or ())
    present = {type(module).__name__ for module in model.modules()}
    if not names & present:
        wanted = sorted(names) if names else "the model's decoder-layer classes"
        raise ShardingError(f"found no module of {wanted} in "
                            f"{type(model).__name__} to shard; name them with fsdp_transformer_layer_cls_to_wrap "
                            "in the accelerate config")
    return names


def refuse_parameter_hooks(model: Any) -> None:
    """Gradient hooks on the parameters themselves (SURE's saliency mask) stay on the whole parameters, which
    sharded training no longer uses: the shards would take unmasked steps. Such a run is refused, not changed."""
    hooked = [name for name, parameter in model.named_parameters()
              if getattr(parameter, "_backward_hooks", None) or getattr(parameter, "_post_accumulate_grad_hooks", None)]
    if hooked:
        raise ShardingError(f"the method put gradient hooks on {len(hooked)} parameters (e.g. {hooked[0]}), which "
                            "the shards of FSDP training would not run; train this method data-parallel (a "
                            "multi-GPU accelerate config) instead")


@dataclass
class _ModuleState:
    """One module as it was before sharding (its class and the parameter objects in its slots) and what
    sharding added to it (attributes, hooks), told apart from what the method adds while it trains."""

    module: torch.nn.Module
    cls: type
    attributes: set[str]
    hooks: dict[str, set[Any]]
    parameters: dict[str, torch.nn.Parameter | None]

    def record_additions(self) -> None:
        """Turns the recorded attribute names into those sharding added (called right after it)."""
        self.attributes = set(vars(self.module)) - self.attributes

    def sharding_hooks(self) -> dict[str, list[Any]]:
        """The keys of the hooks torch's sharding registered since the model was recorded (some only at its
        first forward pass), table by table; the method's own hooks stay."""
        return {table: [key for key, hook in hooks.items()
                        if key not in self.hooks.get(table, set()) and _from_torch_distributed(hook)]
                for table, hooks in _hook_tables(self.module).items()}


def _hook_tables(module: torch.nn.Module) -> dict[str, Any]:
    return {name: value for name, value in vars(module).items() if name.endswith("hooks") and isinstance(value, dict)}


def _from_torch_distributed(hook: Any) -> bool:
    """Whether a hook is torch.distributed's (through the wrappers `nn.Module` and `functools` put around it)."""
    target = getattr(hook, "hook", hook)  # nn.Module's _WrappedHook
    target = getattr(target, "func", target)  # functools.partial
    target = getattr(target, "__func__", target)  # a bound method
    return str(getattr(target, "__module__", "")).startswith("torch.distributed")


@dataclass
class ShardedModel:
    """A model sharded in place across the processes of the current group; `restore` gives it back whole."""

    model: Any
    states: list[_ModuleState] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)

    @classmethod
    def shard(cls, model: Any, device: torch.device) -> ShardedModel:
        """`model` sharded: each decoder layer a unit, the root holding the rest. The original parameters give
        up their storage (each process keeps only its shard) and get it back, trained, in `restore`."""
        import torch.distributed as dist
        from torch.distributed.device_mesh import init_device_mesh

        fully_shard = _fully_shard()
        refuse_parameter_hooks(model)
        units = unit_classes(model)
        sharded = cls(model)
        for module in model.modules():
            sharded.states.append(_ModuleState(module, type(module), set(vars(module)),
                                               {k: set(v) for k, v in _hook_tables(module).items()},
                                               dict(module._parameters.items())))
        sharded.names = {id(p): name for name, p in model.named_parameters()}
        mesh = init_device_mesh(device.type, (dist.get_world_size(),))
        reshard = reshard_after_forward()
        for module in model.modules():
            if type(module).__name__ in units and module is not model:
                fully_shard(module, mesh=mesh, reshard_after_forward=reshard)
        fully_shard(model, mesh=mesh, reshard_after_forward=reshard)
        for state in sharded.states:  # the whole tensors go: each process holds its shard from here on
            state.record_additions()
            for parameter in state.parameters.values():
                if parameter is not None and parameter.numel():
                    parameter.data = torch.empty(0, dtype=parameter.dtype, device=parameter.device)
        return sharded

    def parameters(self, originals: Sequence[torch.nn.Parameter] | None) -> list[torch.nn.Parameter]:
        """The sharded parameters standing for `originals` (all of the model's when None), by name."""
        current = dict(self.model.named_parameters())
        if originals is None:
            return list(current.values())
        return [current[self.names[id(p)]] for p in originals]

    def restore(self) -> None:
        """Every process gathers the full trained weights; the model gets back its classes, hooks and
        attributes, and its original parameter objects (ties included), now holding those weights."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True))
        originals = {id(p): p for state in self.states for p in state.parameters.values() if p is not None}
        for key, parameter in originals.items():  # each gathered tensor taken over, not copied: one model's memory
            parameter.data = full.pop(self.names[key]).detach()  # type: ignore[union-attr]
        del full
        for state in self.states:
            module = state.module
            module.__class__ = state.cls
            for name in state.attributes:
                delattr(module, name)
            for table, keys in state.sharding_hooks().items():
                hooks = getattr(module, table)
                for key in keys:
                    del hooks[key]
            for slot, held in state.parameters.items():
                module.register_parameter(slot, held)
        _forget_fsdp_states([state.module for state in self.states])


def _fully_shard() -> Any:
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # torch before 2.6
        raise ShardingError(f"sharded (FSDP) training needs torch 2.6 or later; this is torch {torch.__version__}"
                            ) from None
    return fully_shard


def _forget_fsdp_states(modules: Sequence[torch.nn.Module]) -> None:
    """Drops torch's record of the sharding states, so the restored modules can be sharded again."""
    try:
        from torch.distributed._composable_state import _module_state_mapping
    except ImportError:  # pragma: no cover - an older or newer torch keeps it elsewhere; re-sharding is tested
        return
    for module in modules:
        _module_state_mapping.pop(module, None)
