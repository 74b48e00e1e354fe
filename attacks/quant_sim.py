"""CPU stand-in for bitsandbytes: round linear-layer weights to the grids bitsandbytes stores them on.

- 4-bit (FP4, the bitsandbytes default, or NF4): the weight is flattened row-major and cut into blocks of
  64; each block is scaled by its absolute maximum and every value goes to the nearest of the 16 code
  values (FP4 has +0 and -0, so 15 distinct levels), then is scaled back (no double quantisation).
- 8-bit (LLM.int8 weights): each output row is scaled by its absolute maximum to [-127, 127] and rounded.

Only the weights are simulated: bitsandbytes' int8 matmul also splits outlier activation columns into a
16-bit product, and its kernels accumulate in their own order, so numbers are close to, not identical
with, a real bitsandbytes run. The output embedding (lm_head) stays in full precision, as transformers
leaves it.
"""

from __future__ import annotations

from typing import Any

import torch

#: bitsandbytes' FP4 (e2m1, bias 3) code, as its dequantisation table (values relative to the block absmax).
FP4_CODE = (0.0, 0.005208333333, 0.6666667, 1.0, 0.3333333, 0.5, 0.16666667, 0.25,
            -0.0, -0.005208333333, -0.6666667, -1.0, -0.3333333, -0.5, -0.16666667, -0.25)
#: bitsandbytes' NF4 code (quantiles of a unit normal, normalised to [-1, 1]).
NF4_CODE = (-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
            -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
            0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
            0.7229568362236023, 1.0)
CODES = {"fp4": FP4_CODE, "nf4": NF4_CODE}
#: Mode name -> (kind, code name); "4bit" is the bitsandbytes default, FP4.
MODES = {"4bit": ("4bit", "fp4"), "fp4": ("4bit", "fp4"), "nf4": ("4bit", "nf4"), "8bit": ("8bit", None)}


def quantize_blockwise_4bit(weight: torch.Tensor, code: str = "fp4", block_size: int = 64) -> torch.Tensor:
    """Dequantised 4-bit blockwise absmax rounding of `weight`, same shape and dtype."""
    levels = torch.tensor(sorted(set(CODES[code])), dtype=torch.float32, device=weight.device)
    flat = weight.detach().float().reshape(-1)
    padding = (-flat.numel()) % block_size
    blocks = torch.nn.functional.pad(flat, (0, padding)).reshape(-1, block_size)
    absmax = blocks.abs().amax(dim=1, keepdim=True)
    scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    midpoints = (levels[1:] + levels[:-1]) / 2
    index = torch.bucketize((blocks / scale).contiguous(), midpoints)
    rounded = levels[index] * absmax
    return rounded.reshape(-1)[: flat.numel()].reshape(weight.shape).to(weight.dtype)


def quantize_rowwise_int8(weight: torch.Tensor) -> torch.Tensor:
    """Dequantised int8 row-wise absmax rounding of a [out, in] weight, same shape and dtype."""
    rows = weight.detach().float().reshape(weight.shape[0], -1)
    absmax = rows.abs().amax(dim=1, keepdim=True)
    scale = torch.where(absmax > 0, absmax / 127.0, torch.ones_like(absmax))
    rounded = torch.round(rows / scale).clamp(-127, 127) * scale
    return rounded.reshape(weight.shape).to(weight.dtype)


def quantizable_linears(model: Any) -> list[tuple[str, torch.nn.Linear]]:
    """The nn.Linear layers bitsandbytes would replace: all but the output embedding."""
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not output
    ]


@torch.no_grad()
def simulate_quantization(model: Any, mode: str, block_size: int = 64) -> dict[str, Any]:
    """Round the model's linear weights in place; returns how many weights moved and by how much."""
    if mode not in MODES:
        raise ValueError(f"unknown quantization mode {mode!r}; expected one of {', '.join(MODES)}")
    kind, code = MODES[mode]
    layers = quantizable_linears(model)
    changed, total, absolute = 0, 0, 0.0
    for _, module in layers:
        weight = module.weight
        if kind == "4bit":
            rounded = quantize_blockwise_4bit(weight, code or "fp4", block_size)
        else:
            rounded = quantize_rowwise_int8(weight)
        difference = (rounded.float() - weight.float()).abs()
        changed += int((difference > 0).sum())
        total += weight.numel()
        absolute += float(difference.sum())
        weight.copy_(rounded)
    return {
        "layers": len(layers),
        "weights": total,
        "fraction_changed": changed / total if total else 0.0,
        "mean_abs_change": absolute / total if total else 0.0,
    }
