"""`mu-eval demo`: the whole pipeline offline (synthetic data, tiny models trained on a CPU, TOFU metrics)."""

from mu_eval.demo.pipeline import DemoConfig, DemoResult, run_demo

__all__ = ["DemoConfig", "DemoResult", "run_demo"]
