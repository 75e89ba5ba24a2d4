"""Parsing of the human units used in config files: durations and sizes.

Both are bounded by what the data plane holds: a duration is finite and at
most MAX_DURATION seconds (timeouts are 32-bit milliseconds in C), a size
at most MAX_SIZE bytes (64 bits)."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

MAX_DURATION = 4_294_967.295  # seconds: 2**32 - 1 milliseconds, about 49.7 days
MAX_SIZE = 2**64 - 1

_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB|k|K|M|G)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "k": 1024,
    "K": 1024,
    "M": 1024**2,
    "G": 1024**3,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
}


def _shown(value: object) -> str:
    """A value as an error message quotes it: 'text', or a number as is."""
    return f"'{value}'" if isinstance(value, str) else str(value)


def parse_duration(value: object) -> float:
    """Seconds from "150ms", "2s", "5m", "1h", "1d" or a plain number of
    seconds.  Raises ValueError for anything else: a negative value, nan,
    inf, or more than MAX_DURATION."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a string like '2s' or '150ms'")
    if isinstance(value, int | float):
        seconds = float(value)
        if math.isnan(seconds) or math.isinf(seconds):
            raise ValueError(
                f"{value} is not a duration: write a number of seconds, or a string like '2s'"
            )
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"'{value}' is not a duration: write it like '2s', '150ms', '1h'")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError("a duration must be a string like '2s' or '150ms'")
    if seconds < 0:
        raise ValueError(f"{_shown(value)}: a duration cannot be negative")
    if seconds > MAX_DURATION:
        raise ValueError(
            f"{_shown(value)} is too long: a duration is at most {MAX_DURATION}s "
            "(about 49.7 days; the data plane keeps timeouts in 32-bit milliseconds)"
        )
    return seconds


def parse_size(value: object) -> int:
    """Bytes from "64KiB", "1MiB", "512" or a plain integer.  Raises
    ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError("a size must be a string like '64KiB' or an integer")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"'{value}' is not a size: write it like '64KiB' or '1MiB'")
        size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    else:
        raise ValueError("a size must be a string like '64KiB' or an integer")
    if size < 0:
        raise ValueError(f"{_shown(value)}: a size cannot be negative")
    if size > MAX_SIZE:
        raise ValueError(f"{_shown(value)} is too large: a size is at most {MAX_SIZE} bytes")
    return size
