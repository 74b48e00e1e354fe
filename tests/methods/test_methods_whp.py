"""WHP's logit-mixing wrapper: scoring and greedy generation see one distribution, and it saves and loads."""

from __future__ import annotations

import torch
from methods_support import FORGET, RETAIN, split

import mu_eval
from mu_eval.backends.hf import HFBackend
from mu_eval.backends.hf_encoding import encode_prompt
from mu_eval.methods.whp import WHP, LogitMixingModel, mix_logits

OPTIONS = {"steps": 20, "lr": 1e-2, "alpha": 3.0, "grad_accum_steps": 1, "batch_size": 3, "warmup_ratio": 0.0}


def test_mix_logits_lowers_only_what_the_reinforced_model_raised():
    base = torch.tensor([1.0, 2.0, 3.0])
    reinforced = torch.tensor([2.0, 1.0, 3.5])
    torch.testing.assert_close(mix_logits(base, reinforced, 2.0), torch.tensor([-1.0, 2.0, 2.0]))


@torch.no_grad()
def manual_greedy(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    """Greedy decoding by full forward passes of the wrapper, one prompt at a time, no cache, no padding."""
    ids = encode_prompt(tokenizer, prompt, None)
    new = []
    for _ in range(max_new_tokens):
        token = int(model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax())
        if token in (tokenizer.eos_token_id, tokenizer.pad_token_id):
            break
        new.append(token)
    return tokenizer.decode(new, skip_special_tokens=True)


def test_batched_generation_matches_greedy_decoding_of_the_mixed_logits(trained):
    model, tokenizer = trained
    wrapper = WHP(**OPTIONS).unlearn(model, tokenizer, split())
    assert isinstance(wrapper, LogitMixingModel)
    prompts = [e.prompt for e in FORGET + RETAIN[:3]]  # different lengths: the batch is left-padded
    backend = HFBackend.from_model(wrapper, tokenizer)
    answers = backend.generate([mu_eval.Generate(p, 10) for p in prompts])
    expected = [manual_greedy(wrapper, tokenizer, p, 10) for p in prompts]
    assert [a.text for a in answers] == expected
    originals = [manual_greedy(wrapper.base, tokenizer, e.prompt, 10) for e in FORGET]
    assert expected[: len(FORGET)] != originals, "mixing changed no forget generation"


def test_whp_through_evaluate_saves_both_models(trained, tmp_path):
    from methods_support import FactsUnlearningTask

    model, tokenizer = trained
    options = {key: str(value) for key, value in OPTIONS.items()}
    report = mu_eval.evaluate(
        (model, tokenizer), [FactsUnlearningTask()], method="whp", method_options=options,
        save_model=tmp_path / "whp", progress=False,
    )
    assert report["method"]["name"] == "whp" and report["method"]["saved_to"] == str(tmp_path / "whp")
    assert (tmp_path / "whp" / "base" / "config.json").is_file()
    assert (tmp_path / "whp" / "reinforced" / "config.json").is_file()
    loaded = LogitMixingModel.from_pretrained(tmp_path / "whp")
    assert loaded.alpha == 3.0
    probabilities = report.items("methods_facts")["probability"]
    again = mu_eval.evaluate((loaded, tokenizer), [FactsUnlearningTask()], progress=False)
    for a, b in zip(again.items("methods_facts")["probability"], probabilities):
        assert abs(a - b) < 1e-5
