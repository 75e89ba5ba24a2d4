"""Make the test run use the installed fastlb, not the source checkout.

`python -m pytest` puts the repository root on sys.path, where fastlb/ holds
sources but no compiled extensions (`pip install .` builds them into
site-packages).  When the checkout's fastlb cannot load its extensions, drop
the checkout from the front of sys.path so the installed package is used.
An editable or in-place build keeps working unchanged."""

from __future__ import annotations

import importlib
import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))


def _use_installed_fastlb() -> None:
    try:
        importlib.import_module("fastlb._http")
        return
    except ImportError:
        pass
    for name in [m for m in sys.modules if m == "fastlb" or m.startswith("fastlb.")]:
        del sys.modules[name]
    for i, entry in enumerate(sys.path):
        if os.path.abspath(entry or os.curdir) == _ROOT:
            del sys.path[i]
            break
    importlib.import_module("fastlb._http")


_use_installed_fastlb()
