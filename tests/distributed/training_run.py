"""Run by the data-parallel training test, in one process or under torchrun: NPO (a reference term and a
retain term) on a tiny checkpoint through `mu_eval.unlearn`, saving the unlearned model; writes, per
process, the losses and how many training forward passes the process ran to SAVE_TO.result-RANK.json."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.py

import torch  # noqa: E402

import mu_eval  # noqa: E402

OPTIONS = {"steps": 3, "batch_size": 2, "grad_accum_steps": 4, "lr": 1e-3, "warmup_ratio": 0.0, "seed": 5}


def unlearn(checkpoint: str, save_to: str) -> dict:
    from support import FACTS
    from transformers import AutoModelForCausalLM, AutoTokenizer

    forwards = [0]
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    model.register_forward_pre_hook(  # training forward passes (the frozen reference and checks run in eval mode)
        lambda module, _: forwards.__setitem__(0, forwards[0] + module.training))
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    result = mu_eval.unlearn(model, tokenizer, "npo", forget=FACTS[:6], retain=FACTS[6:], save_model=save_to,
                             **OPTIONS)
    return {"rank": os.environ.get("RANK", "single"), "forwards": forwards[0], "losses": result.method["info"]}


def cli_arguments(checkpoint: str, data_dir: str, output: str) -> list[str]:
    """`mu-eval` unlearning with grad_diff on TOFU-schema files, saving the model, then evaluating it."""
    return ["--model", checkpoint, "--method", "grad_diff", "--method-args",
            "steps=2,batch_size=2,grad_accum_steps=2,lr=1e-3,warmup_ratio=0", "--tasks", "tofu_forget01",
            "--data-dir", data_dir, "--limit", "4", "--task-args", "max_new_tokens=4", "--device", "cpu", "--quiet",
            "--no-cache", "--save-model", f"{output}/model", "--output-path", f"{output}/out"]


if __name__ == "__main__":
    torch.set_num_threads(1)
    result = unlearn(sys.argv[1], sys.argv[2])  # a file per process: their printed lines may interleave
    Path(f"{sys.argv[2]}.result-{result['rank']}.json").write_text(json.dumps(result))
    if len(sys.argv) > 3:  # then the command line, in the same processes
        from mu_eval.cli import main

        sys.exit(main(cli_arguments(sys.argv[1], sys.argv[3], sys.argv[4])))
