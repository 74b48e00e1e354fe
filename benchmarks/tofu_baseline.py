"""The baseline: TOFU evaluated the way the reference code does it (locuslab/tofu, open-unlearning).

One forward sweep per metric over the dataset in its own order: padded batches of a fixed number of
rows, the full logits upcast to float32 and log-softmaxed over the whole vocabulary, then the labels
gathered. Generation is plain `model.generate` on left-padded batches of 32 prompts.

Sweeps of the forget10 evaluation (open-unlearning's metric list, each metric loading its own data):
forget answer (Prob), forget paraphrase and perturbed answers (truth ratio), forget answer again for
extraction strength / exact memorisation and again for privleak's Min-K%, holdout answers (Min-K%);
retain answer, paraphrase, perturbed; real authors and world facts answer (Prob), answer again (legacy
truth-ratio base pass) and perturbed answers. Token ids are mu-eval's (context and answer tokenised
together) so that both paths score exactly the same tokens and differences can only be numerical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from benchmarks.tofu import BOUNDARY, SetValues, TofuPlan, TokenScores


@dataclass
class SweepCounters:
    """What the baseline did: forward passes, sweeps, and tokens processed with and without padding."""

    sweeps: int = 0
    forwards: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    generate_calls: int = 0
    new_tokens: int = 0
    by_sweep: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@torch.no_grad()
def sweep(model: Any, sequences: list[tuple[int, ...]], starts: list[int], batch_size: int, device: str,
          counters: SweepCounters | None = None) -> list[TokenScores]:
    """Teacher-forced scores of `sequences[i][starts[i]:]`, batches in dataset order, right padding."""
    out: list[TokenScores] = []
    for begin in range(0, len(sequences), batch_size):
        batch = sequences[begin : begin + batch_size]
        lengths = torch.tensor([len(s) for s in batch])
        width = int(lengths.max())
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            start = starts[begin + row]
            labels[row, start : len(ids)] = torch.tensor(ids[start:])
        mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        logp = torch.log_softmax(logits.float(), dim=-1)[:, :-1]
        target = labels[:, 1:].to(device)
        valid = target != -100
        gathered = logp.gather(-1, target.clamp(min=0)[..., None]).squeeze(-1)
        hits = logp.argmax(-1) == target
        gathered, hits, valid = gathered.cpu(), hits.cpu(), valid.cpu()
        for row in range(len(batch)):
            keep = valid[row]
            out.append(TokenScores(tuple(gathered[row][keep].tolist()), tuple(hits[row][keep].tolist())))
        if counters is not None:
            counters.forwards += 1
            counters.real_tokens += int(lengths.sum())
            counters.padded_tokens += len(batch) * width
    return out


@torch.no_grad()
def generate_plain(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int, batch_size: int,
                   device: str, counters: SweepCounters | None = None) -> list[tuple[str, int]]:
    """Greedy `model.generate` on left-padded batches in dataset order; (text, new tokens) per prompt."""
    from transformers import GenerationConfig

    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad)
    out = []
    for begin in range(0, len(prompts), batch_size):
        batch = prompts[begin : begin + batch_size]
        width = max(len(p) for p in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            mask[row, width - len(ids) :] = 1
        generated = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                   generation_config=config)
        for tokens in generated[:, width:].cpu().tolist():
            kept = []
            for token in tokens:
                if token in (eos, pad):  # finished rows are filled with padding
                    break
                kept.append(token)
            out.append((tokenizer.decode(kept, skip_special_tokens=True), len(kept)))
            if counters is not None:
                counters.new_tokens += len(kept)
        if counters is not None:
            counters.generate_calls += 1
    return out


class Baseline:
    """Runs the reference-style sweeps for one plan, tokenising each text once per sweep."""

    def __init__(self, model: Any, tokenizer: Any, device: str, batch_size: int = 32,
                 max_length: int | None = None) -> None:
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.batch_size, self.max_length = batch_size, max_length
        self.counters = SweepCounters()

    def score(self, name: str, prompts: list[str], texts: list[str]) -> list[TokenScores]:
        """One sweep: every (prompt, text) pair scored with EOS appended, as TOFU's answers are."""
        from mu_eval.backends.hf_encoding import encode_score

        encoded = [encode_score(self.tokenizer, p, t, True, self.max_length, BOUNDARY) for p, t in zip(prompts, texts)]
        self.counters.sweeps += 1
        self.counters.by_sweep[name] = len(encoded)
        return sweep(self.model, [e.input_ids for e in encoded], [e.start for e in encoded], self.batch_size,
                     self.device, self.counters)

    def score_perturbed(self, name: str, prompts: list[str], perturbed: list[list[str]]) -> list[list[TokenScores]]:
        flat_prompts = [p for p, options in zip(prompts, perturbed) for _ in options]
        flat = self.score(name, flat_prompts, [x for options in perturbed for x in options])
        out, cursor = [], 0
        for options in perturbed:
            out.append(flat[cursor : cursor + len(options)])
            cursor += len(options)
        return out

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        from mu_eval.backends.hf_encoding import encode_prompt

        ids = [encode_prompt(self.tokenizer, p, self.max_length) for p in prompts]
        answers = generate_plain(self.model, self.tokenizer, ids, max_new_tokens, self.batch_size, self.device,
                                 self.counters)
        return [text for text, _ in answers]

    def scoring_values(self, plan: TofuPlan) -> tuple[dict[str, SetValues], list[TokenScores]]:
        """Every scoring sweep of the evaluation (generations left empty)."""
        values = {}
        for s in plan.sets:
            name = s.spec.name
            answer = self.score(f"{name}/answer", s.prompts, s.answers)
            base = self.score(f"{name}/{s.spec.base_key} (truth-ratio base)", s.prompts, s.bases)
            perturbed = self.score_perturbed(f"{name}/perturbed", s.prompts, s.perturbed)
            memorization = self.score(f"{name}/answer (ES, EM)", s.prompts, s.answers) if s.spec.forget else []
            min_k = self.score(f"{name}/answer (Min-K%)", s.prompts, s.answers) if s.spec.forget else []
            values[name] = SetValues(answer, base, perturbed, [], memorization, min_k)
        holdout = self.score("holdout/answer (Min-K%)", plan.holdout_prompts, plan.holdout_answers)
        return values, holdout

    def generation_values(self, plan: TofuPlan) -> dict[str, list[str]]:
        return {s.spec.name: self.generate(s.prompts, plan.max_new_tokens) for s in plan.sets}

    def run(self, plan: TofuPlan) -> tuple[dict[str, SetValues], list[TokenScores]]:
        """The whole evaluation: scoring sweeps, then generation per set."""
        values, holdout = self.scoring_values(plan)
        for name, texts in self.generation_values(plan).items():
            values[name].generations = texts
        return values, holdout
