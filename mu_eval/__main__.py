"""`python -m mu_eval`: the `mu-eval` command, as launchers start modules (`accelerate launch -m mu_eval`,
`torchrun -m mu_eval`)."""

import sys

from mu_eval.cli import main

sys.exit(main())
