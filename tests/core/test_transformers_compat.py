"""The small shims that keep one code path across the supported transformers releases (4.50 to 5.x)."""

from __future__ import annotations

import pytest
import torch
from tokenizers import AddedToken
from transformers import BertConfig, BertLMHeadModel, LlamaConfig, LlamaForCausalLM

from mu_eval.backends.dtype_keyword import dtype_argument, dtype_keyword
from mu_eval.backends.generation_inputs import generation_inputs
from mu_eval.backends.vision_language import image_token_of


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_the_dtype_argument_loads_the_weights_in_that_dtype(tiny_llama):
    model = LlamaForCausalLM.from_pretrained(tiny_llama, **dtype_argument(torch.bfloat16))
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_the_keyword_is_the_new_name_exactly_where_this_release_takes_it(tiny_llama):
    try:
        takes_new_name = LlamaForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16).dtype == torch.bfloat16
    except TypeError:  # before 4.56 the unknown keyword reaches the model's constructor
        takes_new_name = False
    assert (dtype_keyword() == "dtype") is takes_new_name


def test_token_type_ids_are_dropped_for_a_model_without_them_and_answers_stay_the_same(tiny_llama):
    model = LlamaForCausalLM.from_pretrained(tiny_llama).eval()
    ids = torch.tensor([[1, 5, 9, 13]])
    encoded = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    inputs = generation_inputs(model, encoded)
    assert set(inputs) == {"input_ids", "attention_mask"} and "token_type_ids" in encoded  # a copy, not an edit
    settings = dict(max_new_tokens=4, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        assert torch.equal(model.generate(**inputs, **settings),
                           model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **settings))


def test_token_type_ids_are_kept_for_a_model_that_names_them():
    model = BertLMHeadModel(BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32, is_decoder=True))
    ids = torch.tensor([[1, 2, 3]])
    encoded = {"input_ids": ids, "token_type_ids": torch.ones_like(ids)}
    assert generation_inputs(model, encoded) == encoded


class _Processor:
    """Stands in for a processor's one attribute read here, as older Idefics2 processors set it."""

    def __init__(self, image_token):
        self.image_token = image_token


def test_image_token_is_text_even_where_the_processor_holds_an_added_token():
    assert image_token_of(_Processor(AddedToken("<image>", normalized=False, special=True))) == "<image>"
    assert image_token_of(_Processor("<img>")) == "<img>"
