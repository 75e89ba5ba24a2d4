"""The admin API's request bodies: a JSON object of known keys, each of a
known type.  Anything else is a BodyError, which the API answers with 400.

A body is read as RFC 8259 JSON, stricter than Python's json module: UTF-8
whatever charset the Content-Type names, no NaN or Infinity, no number
that is not finite, and no nesting deeper than the parser's recursion
limit (a RecursionError otherwise).  Messages quote what was sent only
when it is short: a key or a scalar, never a whole list or object."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["BodyError", "parse_object", "typed"]

QUOTED = 64  # characters of a key or value quoted in a message


class BodyError(ValueError):
    """A body that is not what the endpoint takes; the message says why."""


def _constant(name: str) -> Any:
    raise BodyError(f"the body is not valid JSON: {name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"the body is not valid JSON: {_short(text)} is out of range")
    return value


def _short(text: str) -> str:
    return text if len(text) <= QUOTED else text[:QUOTED] + "..."


def _shown(value: object) -> str:
    """A sent value as a message quotes it: JSON for a scalar, its kind
    for a list or an object."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return _short(json.dumps(value))


def parse_object(
    raw: bytes, allowed: Collection[str], required: Collection[str] = ()
) -> dict[str, Any]:
    """The JSON object of a body, with no key outside `allowed` and every
    key of `required`.  Raises BodyError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("the body is not valid JSON: it is not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_constant, parse_float=_finite)
    except BodyError:
        raise
    except RecursionError:
        raise BodyError("the body is not valid JSON: it nests too deeply") from None
    except ValueError:
        raise BodyError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BodyError("the body must be a JSON object")
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise BodyError(
                f"unknown key '{_short(key)}'{hint}; allowed: {', '.join(sorted(allowed))}"
            )
    missing = sorted(set(required) - set(data))
    if missing:
        raise BodyError(f"missing key '{missing[0]}'")
    return data


def typed(body: Mapping[str, Any], key: str, kind: type, default: Any = ...) -> Any:
    """body[key], checked to be a JSON string or integer (not a boolean);
    default when the key is absent and a default is given."""
    if key not in body and default is not ...:
        return default
    value = body[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        what = "an integer" if kind is int else "a string"
        raise BodyError(f"{key} must be {what}, not {_shown(value)}")
    return value
