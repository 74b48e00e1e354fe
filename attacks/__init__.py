"""Built-in attacks and probes; installed as `mu_eval.attacks`."""
