"""Intent latency benchmark; the same as `hotpath bench intent --json`.

    .venv/bin/python bench/bench_intent.py [--model DIR] [--n 3000] [--batch-size 32]
"""

from __future__ import annotations

import sys

from hotpath.cli import main

if __name__ == "__main__":
    main(["bench", "intent", "--json", *sys.argv[1:]])
