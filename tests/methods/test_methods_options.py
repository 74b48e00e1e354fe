"""`--method-args` strings become typed options; unknown keys and bad values fail with clear messages."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mu_eval.method import MethodOptionError
from mu_eval.methods.npo import NPO
from mu_eval.options import OptionError, parse_options


@dataclass
class Options:
    steps: int = 1
    lr: float = 1e-5
    flag: bool = False
    path: str = ""
    clip: float | None = 1.0
    layers: tuple[int, ...] = ()


def test_strings_convert_to_the_declared_types():
    parsed = parse_options(
        Options, {"steps": "20", "lr": "3e-4", "flag": "yes", "path": "a b", "clip": "none", "layers": "5;6+7"}, "demo"
    )
    assert parsed == Options(steps=20, lr=3e-4, flag=True, path="a b", clip=None, layers=(5, 6, 7))


def test_python_values_pass_and_ints_widen_to_float():
    parsed = parse_options(Options, {"steps": 3, "lr": 1, "clip": 0.5, "layers": [1, 2]}, "demo")
    assert parsed == Options(steps=3, lr=1.0, clip=0.5, layers=(1, 2))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"steps": "2.5"}, "steps='2.5': expected an integer"),
        ({"steps": True}, "expected an integer"),
        ({"flag": "maybe"}, "expected true or false"),
        ({"lr": "fast"}, "expected a number"),
        ({"layers": "1;x"}, "expected an integer"),
    ],
)
def test_bad_values_name_the_option_and_type(values, message):
    with pytest.raises(OptionError, match=message):
        parse_options(Options, values, "demo")


def test_unknown_keys_list_every_valid_option():
    with pytest.raises(OptionError) as error:
        parse_options(Options, {"step": "1", "lrr": "2"}, "demo")
    assert "demo has no option 'lrr' (did you mean 'lr'?) or 'step' (did you mean 'steps'?)" in str(error.value)
    assert "valid options: steps, lr, flag, path, clip, layers" in str(error.value)
    with pytest.raises(MethodOptionError, match="no option 'stpes' \\(did you mean 'steps'\\?\\)"):
        NPO(stpes=3)


def test_method_config_records_every_resolved_option():
    method = NPO(beta="0.2", lora_targets="q_proj;v_proj")
    options = method.config()["options"]
    assert options["beta"] == 0.2 and options["lora_targets"] == ("q_proj", "v_proj")
    assert options["lr"] == 1e-5 and options["grad_accum_steps"] == 4 and options["retain_loss"] == "nll"


def test_retain_loss_must_be_known():
    with pytest.raises(ValueError, match="choose nll, kl, none"):
        NPO(retain_loss="mse")


def test_refusals_come_from_the_package_or_a_file(tmp_path, trained):
    from methods_support import FORGET

    from mu_eval.method import MethodError
    from mu_eval.methods.dpo import IdkDPO
    from mu_eval.methods.refusals import REFUSALS, load_refusals

    assert load_refusals() == list(REFUSALS) and len(set(REFUSALS)) >= 20
    path = tmp_path / "refusals.jsonl"
    path.write_text('"No comment."\n{"text": "Ask someone else."}\n\nPlain line.\n', encoding="utf-8")
    assert load_refusals(path) == ["No comment.", "Ask someone else.", "Plain line."]
    _, tokenizer = trained
    single = tmp_path / "one.txt"
    single.write_text("Nope.\n", encoding="utf-8")
    pairs = IdkDPO(refusals=str(single)).forget_items(tokenizer, FORGET)
    assert all(tokenizer.decode(win.input_ids[win.start : -1]) == "Nope." for win, _ in pairs)
    with pytest.raises(MethodError, match="not found"):
        IdkDPO(refusals=str(tmp_path / "missing.txt")).forget_items(tokenizer, FORGET)
