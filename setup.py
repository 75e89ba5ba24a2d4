"""Build the Cython extensions of fastlb over the plain-C data plane in csrc/.

Environment switches:
  FASTLB_DEBUG=1     -O0 -g3, assertions on, Cython line tracing off
  FASTLB_SANITIZE=1  ASan + UBSan (load libasan first: see README "Building")
Release builds use -O2 and no tuning for the build machine's CPU: wheels run on any
x86-64 or aarch64, and SIMD beyond the baseline is chosen at run time.
"""

from __future__ import annotations

import os
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "no", "false")


DEBUG = _flag("FASTLB_DEBUG")
SANITIZE = _flag("FASTLB_SANITIZE")

# Every extension links the whole data plane; unused sections are dropped.
CSRC = sorted(glob("csrc/*.c"))

compile_args = [
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-fvisibility=hidden",
    "-ffunction-sections",
    "-fdata-sections",
    "-Wno-unused-function",
    "-Wno-unreachable-code",
]
link_args = ["-Wl,--gc-sections"]
macros: list[tuple[str, str | None]] = []
if DEBUG or SANITIZE:
    compile_args += ["-O0" if DEBUG else "-O1", "-g3", "-fno-omit-frame-pointer", "-UNDEBUG"]
else:
    compile_args += ["-O2"]
    macros.append(("NDEBUG", "1"))
if SANITIZE:
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    compile_args += san
    link_args += san


def _ext(name: str, pyx: str) -> Extension:
    return Extension(
        name,
        sources=[pyx, *CSRC],
        include_dirs=["csrc"],
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )


extensions = [
    _ext("fastlb._http", "fastlb/_http.pyx"),
    _ext("fastlb._hashring", "fastlb/_hashring.pyx"),
    _ext("fastlb._engine", "fastlb/_engine.pyx"),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        },
        quiet=True,
    ),
)
