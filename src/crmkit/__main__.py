"""``python -m crmkit``: the command line (see :mod:`crmkit.cli`)."""

from __future__ import annotations

import os
import sys

from crmkit.cli import main

if __name__ == "__main__":
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    raise SystemExit(code)
