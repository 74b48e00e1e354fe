"""Built-in unlearning methods, one module per method; installed as `mu_eval.methods`."""
