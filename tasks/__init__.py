"""Built-in tasks, one folder per benchmark family; installed as `mu_eval.tasks`."""
