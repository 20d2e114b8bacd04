"""`python -m twn_hf.train <stage> ...`, the entry point `accelerate launch -m twn_hf.train` runs."""

import sys

from twn_hf.train.cli import main

sys.exit(main())
