"""`--model-args` of the vllm backend, and the keywords they become for vLLM's `LLM` and the HF model beside it.

One dtype rule for both engines (`resolve_dtype`: auto is bfloat16 on a CUDA device that supports it, else
float32), so a float16 checkpoint is not run in float16 by vLLM and in bfloat16 by the hf backend. Every key
is declared: an unknown one is an error naming the closest, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mu_eval.backends.hf_loading import DTYPES, ModelArgsError
from mu_eval.options import OptionError, option, parse_options

#: vLLM's own limit on the log-probs a request may ask for.
DEFAULT_MAX_LOGPROBS = 20

#: The key/value cache vLLM's CPU build gets when neither its size nor a memory share is given.
CPU_KV_CACHE_BYTES = 1 << 30


@dataclass
class VLLMModelArgs:
    """`--model-args k=v,...` of `--backend vllm`."""

    dtype: str = option("auto", choices=DTYPES,
                        help="weights dtype of both engines; auto: bfloat16 on CUDA, else float32")
    revision: str | None = option(None, help="hub revision (branch, tag or commit) of a hub id")
    trust_remote_code: bool = option(False, help="run the checkpoint's own modelling code")
    max_length: int | None = option(None, minimum=1,
                                    help="longest sequence the model is given (vLLM's max_model_len; default: its own)")
    tensor_parallel_size: int = option(1, minimum=1, help="GPUs one copy of the model is split over (vLLM)")
    data_parallel_size: int = option(1, minimum=1, help="copies of the model answering in parallel (vLLM; only 1: "
                                     "vLLM's offline engine refuses more in one process)")
    gpu_memory_utilization: float | None = option(
        None, minimum=0.01, maximum=1.0,
        help="share of each GPU's memory vLLM may take (default vLLM's 0.9); leave room for the HF model beside it")
    kv_cache_memory_bytes: int | None = option(
        None, minimum=1, help="bytes of the key/value cache, instead of a share of memory (default on CPU: 1 GiB)")
    choose_top_k: int = option(20, minimum=1, help="candidates vLLM returns per choice question (its max_logprobs); "
                               "a question with an option outside them is answered by the hf model")
    enforce_eager: bool = option(False, help="no CUDA graphs: slower decoding, faster start and less memory (vLLM)")
    seed: int = option(0, minimum=0, help="vLLM's seed (answers are greedy; it only matters to vLLM's own sampling)")

    @classmethod
    def parse(cls, values: Mapping[str, Any] | None) -> VLLMModelArgs:
        try:
            args = parse_options(cls, values, "backend 'vllm' (--model-args)")
        except OptionError as error:
            raise ModelArgsError(str(error)) from None
        if args.data_parallel_size != 1:
            raise ModelArgsError(
                f"backend 'vllm' (--model-args) option data_parallel_size={args.data_parallel_size}: vLLM's offline "
                "engine runs one copy per process (it refuses data_parallel_size > 1 in one process); use "
                "tensor_parallel_size to spread one copy over several GPUs, or run one mu-eval per GPU")
        return args

    def llm_kwargs(self, dtype: str, device: str = "cuda") -> dict[str, Any]:
        """Keywords of `vllm.LLM` besides the model: `dtype` is the resolved name (never 'auto'), and only the
        parallelism and memory settings that were given are passed, so vLLM keeps its own defaults; except on
        CPU, where vLLM would reserve 92% of the machine's memory unless told a cache size."""
        kwargs: dict[str, Any] = {
            "dtype": dtype,
            "revision": self.revision,
            "trust_remote_code": self.trust_remote_code,
            "seed": self.seed,
            "enforce_eager": self.enforce_eager,
            # sampling is ours alone: the checkpoint's generation_config.json must not change vLLM's defaults
            "generation_config": "vllm",
        }
        if self.choose_top_k > DEFAULT_MAX_LOGPROBS:
            kwargs["max_logprobs"] = self.choose_top_k
        if self.max_length is not None:
            kwargs["max_model_len"] = self.max_length
        if self.tensor_parallel_size != 1:
            kwargs["tensor_parallel_size"] = self.tensor_parallel_size
        if self.data_parallel_size != 1:
            kwargs["data_parallel_size"] = self.data_parallel_size
        if self.gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = self.gpu_memory_utilization
        if self.kv_cache_memory_bytes is not None:
            kwargs["kv_cache_memory_bytes"] = self.kv_cache_memory_bytes
        elif device == "cpu" and self.gpu_memory_utilization is None:
            kwargs["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
        return kwargs

    def hf_model_args(self, dtype: str, max_length: int) -> dict[str, Any]:
        """`--model-args` of the hf backend that loads the same checkpoint for scores and weights: the same
        dtype, revision and context as vLLM's."""
        return {"dtype": dtype, "revision": self.revision, "trust_remote_code": self.trust_remote_code,
                "max_length": max_length}
