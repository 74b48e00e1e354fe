"""Registers the built-in backends, as any third-party plugin would."""

from __future__ import annotations

from mu_eval.plugins import hookimpl


@hookimpl
def register_backends(register):
    from mu_eval.backends.hf import HFBackend
    from mu_eval.backends.vllm import VLLMBackend

    register(HFBackend)
    register(VLLMBackend)
