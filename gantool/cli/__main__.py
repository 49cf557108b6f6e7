import sys

from gantool.cli import main

sys.exit(main())
