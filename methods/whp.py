"""WHP-style logit mixing at inference: v_b - alpha * ReLU(v_r - v_b), v_r from a model reinforced on D_f.

The unlearned "model" is a wrapper module: its forward pass returns mixed logits (so scoring and multiple
choice see them) and its `generate` runs the base model's generation with a logits processor that keeps the
reinforced model's own KV cache, so greedy generation sees exactly the distribution that scoring sees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from mu_eval.backends import kv_cache as cache_kv
from mu_eval.method import ConfiguredMethod
from mu_eval.task import UnlearningData

from .base import FineTuneOptions, summarise_losses
from .task_vector import reinforce

CONFIG_NAME = "logit_mixing.json"


def mix_logits(base: torch.Tensor, reinforced: torch.Tensor, alpha: float) -> torch.Tensor:
    """Lower every token the reinforced model likes more than the base model does."""
    base = base.float()
    return base - alpha * torch.relu(reinforced.float() - base)


class LogitMixingModel(torch.nn.Module):
    """A causal LM whose logits are `mix_logits(base, reinforced)`; usable wherever a transformers LM is."""

    def __init__(self, base: Any, reinforced: Any, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.reinforced = reinforced
        self.alpha = alpha
        self.config = base.config
        self.generation_config = base.generation_config

    def get_output_embeddings(self) -> None:
        """No single output head: the logits come from two models, so scorers must call `forward`."""
        return None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> Any:
        from transformers.modeling_outputs import CausalLMOutput

        kwargs.pop("use_cache", None)
        kwargs.pop(cache_kv.NEW_NAME, None)
        kwargs.pop(cache_kv.OLD_NAME, None)
        base = self.base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
        reinforced = self.reinforced(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
        return CausalLMOutput(logits=mix_logits(base.logits, reinforced.logits, self.alpha))

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> Any:
        from transformers import LogitsProcessorList

        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        processors = LogitsProcessorList([ReinforcedLogits(self.reinforced, self.alpha, mask)])
        processors.extend(kwargs.pop("logits_processor", None) or [])
        return self.base.generate(
            input_ids=input_ids, attention_mask=attention_mask, logits_processor=processors, **kwargs
        )

    def save_pretrained(self, directory: str | Path, **kwargs: Any) -> None:
        """Both models as checkpoints in `base/` and `reinforced/`, with alpha in logit_mixing.json."""
        path = Path(directory)
        self.base.save_pretrained(path / "base", **kwargs)
        self.reinforced.save_pretrained(path / "reinforced", **kwargs)
        (path / CONFIG_NAME).write_text(json.dumps({"method": "whp", "alpha": self.alpha}))

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: Any) -> LogitMixingModel:
        from transformers import AutoModelForCausalLM

        path = Path(directory)
        alpha = json.loads((path / CONFIG_NAME).read_text())["alpha"]
        base = AutoModelForCausalLM.from_pretrained(path / "base", **kwargs)
        reinforced = AutoModelForCausalLM.from_pretrained(path / "reinforced", **kwargs)
        return cls(base, reinforced, alpha).eval()


class ReinforcedLogits:
    """A logits processor mixing in the reinforced model's next-token logits, fed incrementally with a cache."""

    def __init__(self, reinforced: Any, alpha: float, attention_mask: torch.Tensor) -> None:
        self.model = reinforced
        self.alpha = alpha
        self.mask = attention_mask
        self.past: Any = None
        self.seen = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        new = input_ids[:, self.seen :]
        if self.seen:
            self.mask = torch.cat([self.mask, self.mask.new_ones(new.shape)], dim=1)
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)[:, -new.shape[1] :]
        cache = {cache_kv.cache_keyword(self.model): self.past}
        output = self.model(input_ids=new, attention_mask=self.mask, position_ids=positions, use_cache=True, **cache)
        self.past = cache_kv.returned_cache(output)
        self.seen = input_ids.shape[1]
        return mix_logits(scores, output.logits[:, -1], self.alpha).to(scores.dtype)


@dataclass
class WHPOptions(FineTuneOptions):
    """alpha 1 (MUSE; 5 in the quantization study); the reinforced model trains like a task vector's."""

    alpha: float = 1.0


class WHP(ConfiguredMethod):
    """Who's-Harry-Potter style inference-time unlearning by logit mixing with a reinforced model."""

    name = "whp"
    kind = "llm"
    description = "WHP logit mixing: v_b - alpha * ReLU(v_r - v_b) with a model reinforced on the forget set."
    Options: ClassVar[type] = WHPOptions
    accepts_images: ClassVar[bool] = False
    image_refusal: ClassVar[str] = ("its logit-mixing wrapper is a text-only causal LM (the reinforced model never "
                                    "sees pixel values when it generates)")

    def unlearn(self, model: Any, tokenizer: Any, data: UnlearningData) -> Any:
        reinforced, losses = reinforce(model, tokenizer, data, self.settings, self.progress)
        reinforced.requires_grad_(False)
        self.info.update(summarise_losses(losses))
        return LogitMixingModel(model, reinforced, self.settings.alpha).eval()
