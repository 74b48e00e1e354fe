"""Run under torchrun by the replica test: a method that leaves each process's model different (as
nondeterministic GPU kernels, or a method run whole in each process, could), through `mu_eval.unlearn`;
writes, per process, one weight's values to SAVE_TO.result-RANK.json."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.py

import torch  # noqa: E402

import mu_eval  # noqa: E402
from mu_eval.method import Method  # noqa: E402


class RankDependent(Method):
    name = "rank_dependent"

    def unlearn(self, model, tokenizer, data):
        with torch.no_grad():
            model.lm_head.weight.add_(float(os.environ["RANK"]) + 1.0)
        return model


if __name__ == "__main__":
    from support import FACTS
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
    mu_eval.unlearn(model, tokenizer, RankDependent(), forget=FACTS[:2])
    Path(f"{sys.argv[2]}.result-{os.environ['RANK']}.json").write_text(
        json.dumps(model.lm_head.weight[:4, :4].tolist()))
