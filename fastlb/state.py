"""Runtime server overrides: what the admin API changed, how it applies
over a config, how it survives a restart.

An override is kept per (backend, address), in one of three kinds:

- patch: a server of the config with another weight, max_conn or state.  It
  remembers the config's values it was made over, so that a later edit of
  the same key in the config file is seen as such, and the config wins;
- add: a server the config does not list;
- remove: a server of the config taken out.

The state file is JSON, written atomically (temp file, fsync, rename).
Replaying it over a config that has since changed keeps what still makes
sense and drops, with a warning naming it, what the config contradicts.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from fastlb import addresses
from fastlb.config import BackendConfig, Config, ServerConfig, same_server

Key = tuple[str, str]  # (backend name, server address)
PATCH_FIELDS = ("weight", "max_conn", "state")
VERSION = 1


class StateError(Exception):
    """A state file that cannot be read or written."""


def describe(key: Key) -> str:
    """'backend/address', how a server is named in messages."""
    return f"{key[0]}/{key[1]}"


def validation_messages(exc: ValidationError) -> list[str]:
    """'key: problem' lines of a pydantic error, for an API answer."""
    out = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        msg = str(error["msg"]).removeprefix("Value error, ")
        out.append(f"{where}: {msg}" if where else msg)
    return out


@dataclass(frozen=True)
class Patch:
    """New values for some of a config server's fields, and the config's
    values (`was`) when they were set."""

    values: Mapping[str, Any]
    was: Mapping[str, Any]

    def apply(self, server: ServerConfig) -> ServerConfig:
        return server.model_copy(update=dict(self.values)) if self.values else server


@dataclass(frozen=True)
class Overrides:
    """Every runtime change of the servers; immutable, each change is a copy."""

    patches: Mapping[Key, Patch] = field(default_factory=dict)
    added: Mapping[Key, ServerConfig] = field(default_factory=dict)
    removed: frozenset[Key] = frozenset()

    def kind(self, key: Key) -> Literal["patch", "add", "remove"] | None:
        if key in self.removed:
            return "remove"
        if key in self.added:
            return "add"
        return "patch" if key in self.patches else None

    def without(self, key: Key) -> Overrides:
        """A copy with no override of key."""
        return Overrides(
            {k: v for k, v in self.patches.items() if k != key},
            {k: v for k, v in self.added.items() if k != key},
            self.removed - {key},
        )

    def with_patch(self, key: Key, base: ServerConfig, values: Mapping[str, Any]) -> Overrides:
        """A copy where the config server `base` also takes `values`; values
        equal to the config's are no override at all."""
        old = self.patches.get(key, Patch({}, {}))
        merged = {**old.values, **values}
        merged = {k: v for k, v in merged.items() if getattr(base, k) != v}
        out = self.without(key)
        if not merged:
            return out
        was = {k: old.was.get(k, getattr(base, k)) for k in merged}
        return replace(out, patches={**out.patches, key: Patch(merged, was)})

    def with_added(self, key: Key, server: ServerConfig) -> Overrides:
        out = self.without(key)
        return replace(out, added={**out.added, key: server})

    def with_removed(self, key: Key) -> Overrides:
        out = self.without(key)
        return replace(out, removed=out.removed | {key})


# ---- the effective config ---------------------------------------------------


def apply(
    base: Config,
    overrides: Overrides,
    draining: Mapping[Key, ServerConfig] | None = None,
) -> Config:
    """base with the overrides applied.  `draining`: servers on their way
    out, kept (in state drain) until their connections end."""
    draining = draining or {}
    backends: dict[str, BackendConfig] = {}
    for name, backend in base.backends.items():
        servers: list[ServerConfig] = []
        for server in backend.servers:
            key = (name, server.address)
            if key in draining:
                servers.append(draining[key])
            elif key not in overrides.removed:
                patch = overrides.patches.get(key)
                servers.append(patch.apply(server) if patch else server)
        listed = {s.address for s in servers}
        for (bk, address), server in [*overrides.added.items(), *draining.items()]:
            if bk == name and address not in listed:
                servers.append(draining.get((bk, address), server))
                listed.add(address)
        backends[name] = _with_servers(backend, servers)
    return base.model_copy(update={"backends": backends})


def with_runtime(
    config: Config, health_down: Iterable[Key] = (), weights: Mapping[Key, int] | None = None
) -> Config:
    """config with what the health checker decided: servers failing their
    checks (`health_down`) turn from "up" to "down"; `weights` (slow start)
    replace the configured weights."""
    down = set(health_down)
    weights = weights or {}
    if not down and not weights:
        return config
    backends: dict[str, BackendConfig] = {}
    for name, backend in config.backends.items():
        servers = []
        for server in backend.servers:
            key = (name, server.address)
            update: dict[str, Any] = {}
            if key in down and server.state == "up":
                update["state"] = "down"
            if key in weights:
                update["weight"] = weights[key]
            servers.append(server.model_copy(update=update) if update else server)
        backends[name] = _with_servers(backend, servers)
    return config.model_copy(update={"backends": backends})


def _with_servers(backend: BackendConfig, servers: list[ServerConfig]) -> BackendConfig:
    """backend with another server list, validated as a backend (a server
    listed twice is refused)."""
    if servers == list(backend.servers):
        return backend
    return BackendConfig.model_validate({**dict(backend), "servers": servers})


def reconcile(base: Config, overrides: Overrides) -> tuple[Overrides, list[str]]:
    """The overrides that still hold over base, and a warning for each one
    dropped because the config contradicts it (the config wins)."""
    out = Overrides()
    warnings: list[str] = []
    for key in _keys(overrides):
        name, address = key
        kind = overrides.kind(key)
        backend = base.backends.get(name)
        if backend is None:
            warnings.append(f"{kind} of {describe(key)} dropped: no backend '{name}' in the config")
            continue
        server = next((s for s in backend.servers if s.address == address), None)
        if kind == "add":
            added = overrides.added[key]
            listed = [s for s in backend.servers if (name, s.address) not in overrides.removed]
            in_config = next((s for s in listed if s.endpoint == added.endpoint), None)
            other = next(
                (
                    s
                    for (bk, _), s in out.added.items()
                    if bk == name and s.endpoint == added.endpoint
                ),
                None,
            )
            if server is not None:
                warnings.append(
                    f"add of {describe(key)} dropped: the config lists that server itself"
                )
            elif in_config is not None:
                warnings.append(
                    f"add of {describe(key)} dropped: the config lists that server itself, "
                    f"as {in_config.address}"
                )
            elif other is not None:
                warnings.append(f"add of {describe(key)} dropped: {same_server(added, other)}")
            else:
                out = out.with_added(key, added)
        elif server is None:
            warnings.append(f"{kind} of {describe(key)} dropped: the config no longer lists it")
        elif kind == "remove":
            out = out.with_removed(key)
        else:
            out, dropped = _reconcile_patch(out, key, server, overrides.patches[key])
            warnings += dropped
    return _keep_one_server(base, out, warnings)


def _reconcile_patch(
    out: Overrides, key: Key, server: ServerConfig, patch: Patch
) -> tuple[Overrides, list[str]]:
    keep: dict[str, Any] = {}
    warnings = []
    for name, value in patch.values.items():
        now = getattr(server, name)
        if name in patch.was and patch.was[name] != now:
            warnings.append(
                f"patch of {describe(key)} {name}={value} dropped: the config changed "
                f"{name} from {patch.was[name]} to {now} since"
            )
        else:
            keep[name] = value
    return out.with_patch(key, server, keep), warnings


def _keep_one_server(
    base: Config, overrides: Overrides, warnings: list[str]
) -> tuple[Overrides, list[str]]:
    """Undo the removals that would leave a backend with no server."""
    for name, backend in base.backends.items():
        left = [s for s in backend.servers if (name, s.address) not in overrides.removed]
        if not left and not any(bk == name for bk, _ in overrides.added):
            for server in backend.servers:
                key = (name, server.address)
                overrides = overrides.without(key)
                warnings.append(
                    f"remove of {describe(key)} dropped: backend '{name}' would have no server"
                )
    return overrides, warnings


def _keys(overrides: Overrides) -> list[Key]:
    return sorted({*overrides.patches, *overrides.added, *overrides.removed})


# ---- the state file -----------------------------------------------------------


def to_json(overrides: Overrides) -> dict[str, Any]:
    """The state file's content."""
    servers: list[dict[str, Any]] = []
    for key in _keys(overrides):
        entry: dict[str, Any] = {"backend": key[0], "address": key[1]}
        kind = overrides.kind(key)
        if kind == "add":
            added = overrides.added[key]
            entry |= {"op": "add", **{k: getattr(added, k) for k in PATCH_FIELDS}}
        elif kind == "patch":
            patch = overrides.patches[key]
            entry |= {"op": "patch", **patch.values, "config": dict(patch.was)}
        else:
            entry["op"] = "remove"
        servers.append(entry)
    return {"version": VERSION, "servers": servers}


def from_json(data: object, source: str) -> tuple[Overrides, list[str]]:
    """Overrides from a state file's content, and a warning for each entry
    dropped because its values are not valid (now: an added server's host
    may no longer resolve).  Raises StateError for a file that is not a
    state file."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise StateError(f"{source}: not a fastlb state file of version {VERSION}")
    entries = data.get("servers")
    if not isinstance(entries, list):
        raise StateError(f"{source}: 'servers' must be a list")
    out = Overrides()
    warnings = []
    for i, entry in enumerate(entries):
        try:
            key = _key(entry)
            if out.kind(key) is not None:  # another spelling of an earlier entry's address
                warnings.append(
                    f"{entry['op']} of {entry['backend']}/{entry['address']} dropped: "
                    f"an earlier entry is about the same server, {describe(key)}"
                )
                continue
            out = _entry(out, key, entry)
        except ValidationError as exc:
            what = f"{entry.get('op')} of {entry.get('backend')}/{entry.get('address')}"
            detail = "; ".join(validation_messages(exc))
            warnings.append(f"{what} dropped: {detail}")
        except KeyError as exc:
            raise StateError(f"{source}: servers[{i}]: missing key {exc}") from None
        except (TypeError, ValueError) as exc:
            raise StateError(f"{source}: servers[{i}]: {exc}") from None
    return out, warnings


def _key(entry: dict[str, Any]) -> Key:
    """An entry's (backend, address), the address canonical (files of
    earlier versions hold addresses as they were written)."""
    return str(entry["backend"]), addresses.lookup_key(str(entry["address"]))


def _entry(out: Overrides, key: Key, entry: dict[str, Any]) -> Overrides:
    op = entry["op"]
    if op == "remove":
        return out.with_removed(key)
    values = {k: entry[k] for k in PATCH_FIELDS if k in entry}
    if op == "add":
        return out.with_added(key, ServerConfig.model_validate({"address": key[1], **values}))
    if op == "patch":
        ServerConfig.model_validate({"address": key[1], **values})  # the values are valid
        was = entry.get("config", {})
        if not isinstance(was, dict):
            raise ValueError("'config' must be a table")
        return replace(out, patches={**out.patches, key: Patch(values, was)})
    raise ValueError(f"unknown op {op!r}")


def load(path: str | os.PathLike[str]) -> tuple[Overrides, list[str]]:
    """The overrides saved in path (none when the file does not exist) and
    the warnings of from_json."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Overrides(), []
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"{source}: cannot read the state file: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{source}: the state file is not valid JSON: {exc}") from None
    return from_json(data, source)


def save(path: str | os.PathLike[str], overrides: Overrides) -> None:
    """Write the overrides to path atomically: a temp file in the same
    directory, fsync, rename over path, fsync of the directory.  A crash
    leaves the old file or the new one, never a mix.  Raises StateError."""
    target = Path(os.fspath(path))
    text = json.dumps(to_json(overrides), indent=2, sort_keys=True) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise StateError(f"{target}: cannot write the state file: {exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StateError(f"{target}: cannot write the state file: {exc}") from None
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
