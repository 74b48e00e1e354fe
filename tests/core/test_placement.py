"""Models larger than one device: `parallelize`, `device_map`, `max_memory` and `offload_folder` in
`--model-args`, parsed, handed to `from_pretrained`, and a real sharded load (CPU plus disk) that answers
exactly as the model loaded whole."""

from __future__ import annotations

import json

import pytest
import torch

import mu_eval
from mu_eval.backends.hf import HFBackend
from mu_eval.backends.hf_loading import HFModelArgs, ModelArgsError
from mu_eval.backends.placement import input_device
from mu_eval.cli import main


def placement(values: dict, device: str | None = None) -> dict:
    return HFModelArgs.parse(values).placement_kwargs(device)


def test_parallelize_is_device_map_auto_with_memory_per_device():
    assert placement({}) == {}
    assert placement({"parallelize": "true"}) == {"device_map": "auto"}
    assert placement({"parallelize": "true", "max_memory": "0:20GiB+1:18GiB+cpu:64GiB", "offload_folder": "off"}) == {
        "device_map": "auto", "max_memory": {0: "20GiB", 1: "18GiB", "cpu": "64GiB"}, "offload_folder": "off"}
    assert placement({"device_map": "balanced_low_0"}) == {"device_map": "balanced_low_0"}
    assert placement({"device_map": "cpu", "max_memory": ("cpu:1GB",)}) == {
        "device_map": "cpu", "max_memory": {"cpu": "1GB"}}


@pytest.mark.parametrize(("values", "device", "message"), [
    ({"max_memory": "cpu:1GB"}, None, "max_memory applies to a device map"),
    ({"offload_folder": "x"}, None, "offload_folder applies to a device map"),
    ({"parallelize": "true", "max_memory": "cpu"}, None, "expected DEVICE:SIZE"),
    ({"parallelize": "true", "max_memory": "0:lots"}, None, "'lots' is not a size"),
    ({"parallelize": "true", "max_memory": "0:1GB+0:2GB"}, None, "names '0' twice"),
    ({"parallelize": "true", "device_map": "cpu"}, None, "cannot go with device_map=cpu"),
    ({"parallelize": "true"}, "cuda:1", "drop --device cuda:1"),
])
def test_placement_mistakes_are_one_line_errors(values, device, message):
    with pytest.raises(ModelArgsError, match=message) as error:
        placement(values, device)
    assert "\n" not in str(error.value)


def test_an_unknown_placement_key_names_the_closest():
    with pytest.raises(ModelArgsError, match="did you mean 'max_memory'"):
        HFModelArgs.parse({"max_memroy": "cpu:1GB"})


def test_inputs_enter_at_the_first_accelerator_of_a_device_map(tiny_checkpoint):
    model = HFBackend.from_pretrained(str(tiny_checkpoint), {"device_map": "cpu"}).torch_model
    placed = getattr(model, "hf_device_map", {"": "cpu"})  # older transformers record torch.device values
    assert input_device(model) == torch.device("cpu")
    assert {key: str(place) for key, place in placed.items()} == {"": "cpu"}
    model.hf_device_map = {"model.embed_tokens": "cpu", "model.layers": 1, "lm_head": "disk"}
    assert input_device(model) == torch.device("cuda", 1)  # where accelerate runs what the CPU and disk hold


def test_a_model_split_between_cpu_and_disk_answers_as_the_whole_model(tiny_checkpoint, tmp_path):
    from support import register_support_task

    task = register_support_task()
    whole = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    weight_bytes = sum(p.numel() * p.element_size() for p in whole.torch_model.parameters())
    args = {"device_map": "auto", "max_memory": f"cpu:{int(weight_bytes * 0.85)}",
            "offload_folder": str(tmp_path / "offload")}
    sharded = HFBackend.from_pretrained(str(tiny_checkpoint), args)
    assert set(sharded.torch_model.hf_device_map.values()) == {"cpu", "disk"}
    assert any(p.device.type == "meta" for p in sharded.torch_model.parameters())  # really not all in memory
    assert sharded.device == torch.device("cpu")
    assert sharded.identity() == whole.identity()  # the same weights: the same answer cache
    reports = [mu_eval.evaluate(backend, [task], use_cache=False, progress=False, log_samples=True)
               for backend in (whole, sharded)]
    assert reports[0].tasks[task]["metrics"] == reports[1].tasks[task]["metrics"]
    assert reports[0].data["tasks"][task]["items"] == reports[1].data["tasks"][task]["items"]


def test_cli_sharded_run_gives_the_whole_models_numbers(tiny_checkpoint, tmp_path, capsys):
    from support import register_support_task

    task = register_support_task()
    common = ["--model", str(tiny_checkpoint), "--tasks", task, "--limit", "3", "--no-cache", "--quiet"]
    sharded = ["--model-args", f"parallelize=true,max_memory=cpu:400KB,offload_folder={tmp_path / 'off'}"]
    assert main([*common, "--output-path", str(tmp_path / "whole.json")]) == 0
    assert main([*common, *sharded, "--output-path", str(tmp_path / "sharded.json")]) == 0, capsys.readouterr().err
    whole, split = (json.loads((tmp_path / name).read_text()) for name in ("whole.json", "sharded.json"))
    assert split["config"]["model_args"]["parallelize"] == "true"
    assert split["tasks"][task]["metrics"] == whole["tasks"][task]["metrics"]


def test_cli_placement_error_exits_2(tiny_checkpoint, capsys):
    from support import register_support_task

    status = main(["--model", str(tiny_checkpoint), "--tasks", register_support_task(),
                   "--model-args", "max_memory=cpu:1GB"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "max_memory applies to a device map" in err
