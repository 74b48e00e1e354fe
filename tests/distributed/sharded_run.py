"""Run by the sharded-training test, in one process or under `accelerate launch` with an FSDP config: RMU
(which trains a few layers' parameters only, freezing the rest for its run), gradient difference through LoRA
adapters (merged afterwards), then gradient ascent, on the same in-memory model, so each run shards a model
the one before handed back. Writes, per process, how
the model came back (the same parameter objects and classes, plain tensors, no hooks or attributes left over,
the caller's `requires_grad` flags) to SAVE_TO.result-RANK.json, and the final weights to SAVE_TO/."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.py

import torch  # noqa: E402

import mu_eval  # noqa: E402

RMU = {"steps": 2, "batch_size": 2, "grad_accum_steps": 2, "lr": 5e-3, "steering_coeff": 20.0,
       "retain_weight": 10.0, "seed": 3}
LORA = {"steps": 2, "batch_size": 2, "grad_accum_steps": 2, "lr": 1e-2, "lora_r": 4, "seed": 5}
ASCENT = {"steps": 2, "batch_size": 2, "grad_accum_steps": 2, "lr": 1e-3, "warmup_ratio": 0.0, "seed": 4}


def shape_of(model: torch.nn.Module) -> dict:
    """What a caller can see of the model: classes, hooks, attributes, parameter objects and flags."""
    return {
        "classes": [type(m).__name__ for m in model.modules()],
        "hooks": [sum(len(v) for k, v in vars(m).items() if k.endswith("hooks") and isinstance(v, dict))
                  for m in model.modules()],
        "attributes": [sorted(vars(m)) for m in model.modules()],
        "parameter_ids": [id(p) for p in model.parameters()],
        "parameter_types": sorted({type(p.data).__name__ for p in model.parameters()}),
        "requires_grad": [p.requires_grad for p in model.parameters()],
    }


def run(checkpoint: str, save_to: str) -> dict:
    from support import FACTS
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model.model.embed_tokens.weight.requires_grad_(False)  # a caller's choice the runs must hand back
    before = shape_of(model)
    rmu = mu_eval.unlearn(model, tokenizer, "rmu", forget=FACTS[:4], retain=FACTS[4:8], **RMU)
    after_rmu = shape_of(model)
    lora = mu_eval.unlearn(model, tokenizer, "grad_diff", forget=FACTS[:4], retain=FACTS[4:8], **LORA)
    after_lora = shape_of(model)
    ascent = mu_eval.unlearn(model, tokenizer, "grad_ascent", forget=FACTS[:4], save_model=save_to, **ASCENT)
    return {"rank": os.environ.get("RANK", "single"), "before": before, "after_rmu": after_rmu,
            "after_lora": after_lora, "after_ascent": shape_of(model), "rmu": rmu.method["info"],
            "lora": lora.method["info"], "ascent": ascent.method["info"]}


if __name__ == "__main__":
    torch.set_num_threads(1)
    result = run(sys.argv[1], sys.argv[2])
    Path(f"{sys.argv[2]}.result-{result['rank']}.json").write_text(json.dumps(result))
