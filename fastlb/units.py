"""Parsing of the human units used in config files: durations and sizes."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

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


def parse_duration(value: object) -> float:
    """Seconds from "150ms", "2s", "5m", "1h", "1d" or a plain number of
    seconds.  Raises ValueError for anything else, or a negative value."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a string like '2s' or '150ms'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"'{value}' is not a duration: write it like '2s', '150ms', '1h'")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError("a duration must be a string like '2s' or '150ms'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
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
        raise ValueError("a size cannot be negative")
    return size
