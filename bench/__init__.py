"""fastlb's benchmarks.  Importing this package makes sure the fastlb it
measures is one with compiled extensions (see use_installed_fastlb)."""

from __future__ import annotations

import importlib
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def use_installed_fastlb() -> str:
    """Make `import fastlb` load a build with its C extensions.

    `python -m ...` from the checkout puts the checkout first on sys.path,
    where fastlb/ holds sources but no compiled extensions after a plain
    `pip install .`.  When the checkout's fastlb cannot load them, drop the
    checkout from sys.path so the installed package is used; an editable or
    in-place build keeps working unchanged.  Returns the directory that holds
    the fastlb package in use, for child processes' PYTHONPATH."""
    try:
        importlib.import_module("fastlb._http")
    except ImportError:
        for name in [m for m in sys.modules if m == "fastlb" or m.startswith("fastlb.")]:
            del sys.modules[name]
        for i, entry in enumerate(sys.path):
            if os.path.abspath(entry or os.curdir) == _ROOT:
                del sys.path[i]
                break
        importlib.import_module("fastlb._http")
    fastlb = sys.modules["fastlb"]
    return os.path.dirname(os.path.dirname(os.path.abspath(str(fastlb.__file__))))


FASTLB_SITE = use_installed_fastlb()
