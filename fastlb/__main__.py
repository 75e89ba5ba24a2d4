"""`python -m fastlb` runs the command line."""

import sys

from fastlb.cli import main

sys.exit(main())
