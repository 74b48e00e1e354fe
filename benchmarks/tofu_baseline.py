"""The baseline: TOFU forget10 evaluated the way open-unlearning does it, point by point.

What open-unlearning does (its source, by file) and what the baseline does for it:

1. Metric list (configs/eval/tofu.yaml, configs/eval/tofu_metrics/*.yaml): each metric loads its own data
   and runs its own sweep over it. The scoring sweeps of forget10 are 13:
   forget: answer Prob, paraphrased-answer Prob, perturbed-answers Prob, extraction strength / exact
   memorisation (one pass, the answer again) and privleak's Min-K% (the answer again) = 5;
   retain: answer, paraphrase, perturbed = 3; real authors: answer, perturbed = 2; world facts: answer,
   perturbed = 2; holdout: answer for Min-K% = 1. The real-authors and world-facts truth ratios read the
   answer Prob from the metric cache (`ra_Q_A_Prob`/`wf_Q_A_Prob` as `pre_compute` of their truth ratio;
   the evaluator passes its logs as `cache=` in src/evals/base.py), so those answers are scored once.
2. Per-item preparation (src/data/qa.py `QADataset.__getitem__`, src/data/utils.py
   `preprocess_chat_instance`): every sweep builds its dataset anew; each item reads question, answer and
   index from a `datasets.Dataset`, tokenises prompt + answer and the prompt alone with truncation to 512
   tokens, appends EOS, labels the prompt -100, and becomes tensors (`prepare_items`).
3. Batching (configs/collator/DataCollatorForSupervisedDatasetwithIndex): padded batches of a fixed
   number of rows in dataset order, right padding with the pad token, labels -100 (`collate`);
   `--baseline-batch-size` sets the rows (32 in most metric configs; the scripts also time 256).
4. Scoring (src/evals/metrics/utils.py `evaluate_probability`): open-unlearning takes the cross-entropy of
   the full logits in the model's dtype; the baseline upcasts the full logits to float32 and
   log-softmaxes them over the whole vocabulary, then gathers the labels (`sweep`), so that its per-token
   values compare with mu-eval's float32 ones (and its argmax flags serve exact memorisation).
5. Generation (ROUGE): plain `model.generate` on left-padded batches, greedy (`generate_plain`).

Token ids are mu-eval's "prefix" rule (`encode_score`), which is open-unlearning's for a prompt without a
chat template, so both paths score exactly the same tokens and differences can only be numerical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from benchmarks.tofu import BOUNDARY, SetValues, TofuPlan, TokenScores

#: open-unlearning's QA datasets cut prompt + answer to their first 512 tokens (configs/data/datasets/TOFU_QA_*.yaml).
QA_MAX_LENGTH = 512


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


@dataclass
class PreparedItem:
    """One dataset item as open-unlearning's QADataset returns it: tensors of ids, labels (-100 over the prompt)
    and attention mask, no padding."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor


def prepare_items(tokenizer: Any, prompts: list[str], texts: list[str], max_length: int = QA_MAX_LENGTH
                  ) -> list[PreparedItem]:
    """Per-item preparation, open-unlearning's way (src/data/qa.py `QADataset.__getitem__`, src/data/utils.py
    `preprocess_chat_instance`): the sweep's rows become a `datasets.Dataset` with an index column; each item
    reads its question, answer and index from it, tokenises prompt + answer and the prompt alone (first 512
    tokens), appends EOS, and becomes three tensors. The token ids are mu-eval's "prefix" rule with the same
    cap (`encode_score`), identical to open-unlearning's for a prompt without a chat template."""
    import datasets

    from mu_eval.backends.hf_encoding import encode_score

    data = datasets.Dataset.from_dict({"question": prompts, "answer": texts})
    data = data.add_column("index", list(range(len(data))))
    items = []
    for idx in range(len(data)):
        question, answer, _ = data[idx]["question"], data[idx]["answer"], data[idx]["index"]
        encoded = encode_score(tokenizer, question, answer, True, None, BOUNDARY, right_cap=max_length)
        ids = list(encoded.input_ids)
        labels = [-100] * encoded.start + ids[encoded.start :]
        items.append(PreparedItem(torch.tensor(ids), torch.tensor(labels), torch.tensor([1] * len(ids))))
    return items


def collate(items: list[PreparedItem], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """open-unlearning's DataCollatorForSupervisedDataset (src/collators/base.py): right padding of ids with the
    pad token, of labels with -100 and of the mask with 0."""
    from torch.nn.utils.rnn import pad_sequence

    return (pad_sequence([i.input_ids for i in items], batch_first=True, padding_value=pad_id),
            pad_sequence([i.labels for i in items], batch_first=True, padding_value=-100),
            pad_sequence([i.attention_mask for i in items], batch_first=True, padding_value=0))


@torch.no_grad()
def sweep(model: Any, items: list[PreparedItem], batch_size: int, device: str, pad_id: int = 0,
          counters: SweepCounters | None = None) -> list[TokenScores]:
    """Teacher-forced scores of every item's labelled tokens, batches in dataset order, right padding."""
    out: list[TokenScores] = []
    for begin in range(0, len(items), batch_size):
        batch = items[begin : begin + batch_size]
        input_ids, labels, mask = collate(batch, pad_id)
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
            counters.real_tokens += int(mask.sum())
            counters.padded_tokens += int(mask.numel())
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
        """One sweep: every (prompt, text) pair prepared per item and scored with EOS appended, as TOFU's
        answers are."""
        items = prepare_items(self.tokenizer, prompts, texts)
        self.counters.sweeps += 1
        self.counters.by_sweep[name] = len(items)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return sweep(self.model, items, self.batch_size, self.device, pad, self.counters)

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
        """Every scoring sweep of the evaluation (generations left empty): open-unlearning's 13 (module doc)."""
        values = {}
        for s in plan.sets:
            name = s.spec.name
            answer = self.score(f"{name}/answer", s.prompts, s.answers)
            if s.spec.base_key == "answer":  # open-unlearning's truth ratio reads the Prob metric's cached values
                base = answer
            else:
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
