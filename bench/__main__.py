"""python -m bench: the benchmark tool (bench/tool/cli.py, bench/README.md)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

NEEDED = {"psutil": "psutil", "rich": "rich", "matplotlib": "matplotlib"}


def main(argv: Sequence[str] | None = None) -> int:
    """Check the Python packages the tool needs, then run it."""
    absent = [dist for module, dist in NEEDED.items() if importlib.util.find_spec(module) is None]
    if absent:
        print(
            f"bench: missing Python packages: {' '.join(absent)}; install them with "
            "pip install -e '.[bench]' (or pip install " + " ".join(absent) + ")",
            file=sys.stderr,
        )
        return 2
    from bench.tool.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
