"""The answer cache is keyed by everything that can change an answer: each change below, made alone against a
run whose answers are all cached, must find none of them in the cache (and the unchanged rerun finds all)."""

from __future__ import annotations

import json
import shutil
import types

import pytest
from support import register_support_task

import mu_eval
from mu_eval.backends.hf import HFBackend
from mu_eval.cache import AnswerCache
from mu_eval.engine import Engine
from mu_eval.plugins import get_registry
from mu_eval.requests import Generate, Score


class RenamedBackend(HFBackend):
    """The same code under another name: another backend's answers are never this one's."""

    name = "hf_renamed_for_cache_test"


class NewerBackend(HFBackend):
    """The same backend (same name) with its answer version bumped, as after a change that moves answers."""

    answer_version = HFBackend.answer_version + 1


def register_backends() -> None:
    registry = get_registry()
    if RenamedBackend.name not in registry.entries["backends"]:
        module = types.ModuleType("cache_identity_backends")

        def register(register):
            register(RenamedBackend)

        module.register_backends = mu_eval.hookimpl(register)
        registry.add_plugin(module, "cache_identity_backends")


def engine_counts(model, cache_dir, **options):
    report = mu_eval.evaluate(str(model), [register_support_task()], limit=2, progress=False, cache_dir=cache_dir,
                              **options)
    return report["engine"]["from_cache"], report["engine"]["distinct"]


@pytest.fixture
def checkpoint(tiny_checkpoint, tmp_path):
    """A private copy: some cases edit the tokenizer or config files in place (same path, same weights)."""
    return shutil.copytree(tiny_checkpoint, tmp_path / "model")


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def set_chat_template(directory, template):
    edit_json(directory / "tokenizer_config.json", lambda data: data.__setitem__("chat_template", template))
    (directory / "chat_template.jinja").unlink(missing_ok=True)


CHANGES = {
    "max_length": {"model_args": {"max_length": "256"}},
    "dtype": {"model_args": {"dtype": "bfloat16"}},
    "attn_implementation": {"model_args": {"attn_implementation": "eager"}},
    "generation_cache": {"model_args": {"generation_cache": "static"}},
    "no_chat_template": {"use_chat_template": False},
    "backend_name": {"backend": RenamedBackend.name},
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_setting_is_a_cache_miss(checkpoint, tmp_path, change):
    register_backends()
    set_chat_template(checkpoint, "{% for m in messages %}<|user|> {{ m['content'] }}\n{% endfor %}<|assistant|>")
    cache = tmp_path / "cache"
    hits, distinct = engine_counts(checkpoint, cache)
    assert hits == 0 and distinct > 0
    assert engine_counts(checkpoint, cache) == (distinct, distinct)  # unchanged: every answer from the cache
    assert engine_counts(checkpoint, cache, **CHANGES[change])[0] == 0


FILE_EDITS = {
    "chat_template": lambda d: set_chat_template(d, "{% for m in messages %}Q: {{ m['content'] }}\n{% endfor %}A:"),
    "tokenizer": lambda d: edit_json(d / "tokenizer.json", lambda data: data["added_tokens"].append(
        {**data["added_tokens"][-1], "id": data["model"]["vocab"].__len__(), "content": "<extra>"})),
    "config": lambda d: edit_json(d / "config.json", lambda data: data.__setitem__("rms_norm_eps", 1e-3)),
}


@pytest.mark.parametrize("edit", sorted(FILE_EDITS))
def test_an_edited_file_beside_unchanged_weights_is_a_cache_miss(checkpoint, tmp_path, edit):
    set_chat_template(checkpoint, "{% for m in messages %}<|user|> {{ m['content'] }}\n{% endfor %}<|assistant|>")
    cache = tmp_path / "cache"
    hits, distinct = engine_counts(checkpoint, cache)
    assert engine_counts(checkpoint, cache) == (distinct, distinct)
    FILE_EDITS[edit](checkpoint)
    assert engine_counts(checkpoint, cache)[0] == 0


def test_generation_settings_of_a_request_are_part_of_its_key(checkpoint, tmp_path):
    backend = HFBackend.from_pretrained(str(checkpoint), device="cpu")
    cache = AnswerCache(tmp_path, backend.identity())
    try:
        request = Generate("Question: Who wrote Hamlet?\nAnswer:", 8, ("\n",))
        cache.put_many({request: backend.generate([request])[0]})
        assert request in cache.get_many([request])
        for other in (Generate(request.prompt, 9, ("\n",)), Generate(request.prompt, 8, (".",))):
            assert cache.get_many([other]) == {}
    finally:
        cache.close()
        backend.close()


def test_a_bumped_answer_version_is_a_cache_miss(checkpoint, tmp_path):
    requests = [Score("Question: Who wrote Hamlet?\nAnswer:", " William Shakespeare"), Score("The sky", " is blue")]
    counts = []
    for backend_class in (HFBackend, HFBackend, NewerBackend):
        backend = backend_class.from_pretrained(str(checkpoint), device="cpu")
        cache = AnswerCache(tmp_path, backend.identity())
        engine = Engine(backend, cache=cache, progress=False)
        engine.run(requests)
        counts.append(engine.stats.from_cache)
        cache.close()
    assert counts == [0, 2, 0]


def test_the_library_versions_are_in_the_identity(tiny_checkpoint):
    import torch
    import transformers

    backend = HFBackend.from_pretrained(str(tiny_checkpoint), device="cpu")
    assert backend.identity()["versions"] == {"torch": torch.__version__, "transformers": transformers.__version__}
    backend.close()
