"""Config file formats: a file's text in, plain data (the same for TOML and
YAML) out, or a syntax error that names the line and column.

The format is the file name's: ".toml", or ".yaml"/".yml"; any other name
is read as TOML, and a syntax error then says so.  TOML is read by the
standard library (tomllib).  YAML is read by PyYAML's safe loader with the
YAML 1.2 rules for plain scalars, so that a value means what it would in
TOML:

- only true/false are booleans ("yes", "no", "on", "off" stay strings);
- integers are decimal (0x/0o for hex and octal), with no "1:30"
  sexagesimal, and nothing is read as a date;
- a key is the text written: `2024:` is the key "2024", as in TOML;
- a key given twice in one mapping is an error (TOML's rule), while `<<`
  merges from an anchor may be overridden.

As in TOML, "2s" and "64KiB" are strings and 60 is a number: the schema
takes both (fastlb/units.py)."""

from __future__ import annotations

import re
import sys
from pathlib import PurePath
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["FORMATS", "FormatError", "format_of", "loads"]

# File name suffix -> format.
FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}

_TOML_END = "(at end of document)"


class FormatError(Exception):
    """The text is not valid in its format; the message names the line and
    column."""


def format_of(name: str) -> str | None:
    """'toml' or 'yaml' by the file name's suffix; None when it has neither."""
    return FORMATS.get(PurePath(name).suffix.lower())


TOO_DEEP = (
    "{fmt}: the file nests lists or tables too deeply to be read (a config needs a few levels)"
)


def loads(text: str, name: str) -> dict[str, Any]:
    """The data of a config file's text; the format is chosen by name.
    Raises FormatError."""
    fmt = format_of(name)
    try:
        return _loads(text, fmt)
    except RecursionError:  # both parsers recurse per level of nesting
        raise FormatError(TOO_DEEP.format(fmt="YAML" if fmt == "yaml" else "TOML")) from None


def _loads(text: str, fmt: str | None) -> dict[str, Any]:
    if fmt == "yaml":
        return _yaml(text)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        if message.endswith(_TOML_END):
            line, column = _end_position(text)
            end = f"(at end of document, line {line}, column {column})"
            message = message[: -len(_TOML_END)] + end
        if fmt is None:
            message += (
                "; the file was read as TOML, since its name does not end in .toml, .yaml or .yml"
            )
        raise FormatError(f"TOML syntax error: {message}") from None


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


# ---- YAML -----------------------------------------------------------------------

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
# YAML 1.1 resolvers of the safe loader, dropped (bool, int and float come back below).
_DROPPED = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:value",  # YAML 1.1's "=", which the safe loader cannot build
}


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 plain scalars, keys as written and no
    duplicate keys (see the module's docstring)."""

    def construct_yaml_int(self, node: Node) -> int:
        text = str(self.construct_scalar(node))  # type: ignore[arg-type]
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text, 10)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError(
                    None,
                    None,
                    "a key must be a plain value, not a list or a mapping",
                    key_node.start_mark,
                )
            if key_node.value in seen:
                raise ConstructorError(
                    None, None, f"key '{key_node.value}' is given twice", key_node.start_mark
                )
            seen.add(key_node.value)
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            mapping[str(key_node.value)] = self.construct_object(value_node, deep=deep)
        return mapping


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+.0123456789"))
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _yaml(text: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        raise FormatError(f"YAML syntax error: {_describe(exc)}") from None
    except yaml.YAMLError as exc:
        raise FormatError(f"YAML syntax error: {exc}") from None
    if data is None:  # an empty file (or only comments): as in TOML, no keys
        return {}
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise FormatError(
            f"the file holds {kind}: it must be a mapping of keys (global, listeners, "
            "backends, admin)"
        )
    return data


def _describe(exc: yaml.MarkedYAMLError) -> str:
    """The problem, then where: (at line L, column C; its context), 1-based."""
    problem = exc.problem or exc.context or "invalid YAML"
    where: list[str] = []
    if exc.problem_mark is not None:
        where.append(f"at {_at(exc.problem_mark)}")
    if exc.context and exc.problem and exc.context_mark is not None:
        where.append(f"{exc.context} at {_at(exc.context_mark)}")
    elif exc.context and exc.problem:
        where.append(exc.context)
    return f"{problem} ({'; '.join(where)})" if where else problem


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"
