"""`python -m gantool.train ARGS` is `gantool train ARGS`: the entry point torchrun starts once per process.

    torchrun --nproc-per-node 2 -m gantool.train --model cdcgan -o runs/cdcgan-ddp
"""

import sys

from gantool.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
