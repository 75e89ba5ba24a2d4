"""fastlb.control.Controller and fastlb.state: the effective config built
from the base config and the runtime overrides, conflicts, health, slow
start, persistence (atomic writes, replay over a changed config), reload,
and draining a server before removing it, on a running engine."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from control_helpers import HOST, Backend, config_data, get, make_config, toml_config, wait_for

from fastlb import state
from fastlb.config import Config, ConfigError, parse_config
from fastlb.control import Conflict, Controller, Invalid, LoopThread, NotFound, StateError

A, B, C = "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"


def _servers(config: Config, backend: str = "web") -> dict[str, tuple[int, int, str]]:
    return {s.address: (s.weight, s.max_conn, s.state) for s in config.backends[backend].servers}


def _ctl(tmp_path: Path, servers: list[str] | None = None, **admin: Any) -> Controller:
    admin.setdefault("state_file", str(tmp_path / "state.json"))
    return Controller(make_config(servers or [A, B], **admin))


# ---- the effective config -------------------------------------------------------


def test_no_override_is_the_base(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path)
    assert ctl.effective() == ctl.base == ctl.configured()
    assert not (tmp_path / "state.json").exists()


def test_patch_add_remove(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path)
    ctl.patch_server("web", A, weight=5, state="maint")
    ctl.add_server("web", C, weight=2, max_conn=10, state="drain")
    assert _servers(ctl.effective()) == {A: (5, 0, "maint"), B: (1, 0, "up"), C: (2, 10, "drain")}
    assert ctl.base.backends["web"].servers[0].weight == 1  # the base is untouched
    ctl.patch_server("web", C, state="ready")
    assert _servers(ctl.effective())[C] == (2, 10, "up")
    # Back to the config's values: no override is left for A.
    ctl.patch_server("web", A, weight=1, state="ready")
    assert ctl.overrides().kind(("web", A)) is None


def test_change_errors(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path)
    with pytest.raises(NotFound, match="no backend named 'nope'"):
        ctl.add_server("nope", C)
    with pytest.raises(NotFound, match=f"has no server {C}"):
        ctl.patch_server("web", C, weight=2)
    with pytest.raises(Conflict, match=f"already has server {A}"):
        ctl.add_server("web", A)
    with pytest.raises(Invalid, match="less than or equal to 256"):
        ctl.patch_server("web", A, weight=300)
    with pytest.raises(Invalid, match="not one of: ready, drain, maint"):
        ctl.patch_server("web", A, state="down")
    with pytest.raises(Invalid, match="nothing to change"):
        ctl.patch_server("web", A)
    with pytest.raises(Invalid, match="not host:port"):
        ctl.add_server("web", "nonsense")
    assert ctl.effective() == ctl.base


def test_readding_a_removed_config_server_is_a_patch(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path)
    ctl.begin_remove("web", A)
    ctl.finish_remove("web", A)
    assert list(_servers(ctl.effective())) == [B]
    assert ctl.overrides().kind(("web", A)) == "remove"
    ctl.add_server("web", A, weight=3)
    assert ctl.overrides().kind(("web", A)) == "patch"
    assert _servers(ctl.effective()) == {A: (3, 0, "up"), B: (1, 0, "up")}


def test_readding_a_removed_config_server_under_another_spelling(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path, [A, B, C])
    assert ctl.begin_remove("web", "127.000.000.001:7001")  # A, spelled otherwise
    ctl.finish_remove("web", "127.1:7001")
    assert ctl.begin_remove("web", B)
    with pytest.raises(Conflict, match=f"server {B} of backend 'web' is being removed"):
        ctl.add_server("web", "127.000.000.001:7002")
    added = ctl.add_server("web", "127.1:7001", weight=3)
    assert added.address == A  # back under the config's address, as a patch
    assert ctl.overrides().kind(("web", A)) == "patch"
    assert _servers(ctl.configured()) == {A: (3, 0, "up"), B: (1, 0, "drain"), C: (1, 0, "up")}


def test_the_last_server_stays(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path)
    ctl.begin_remove("web", A)
    with pytest.raises(Conflict, match="last one of backend 'web'"):
        ctl.begin_remove("web", B)
    assert ctl.begin_remove("web", A) is False  # already draining
    with pytest.raises(Conflict, match="being removed"):
        ctl.patch_server("web", A, weight=2)
    with pytest.raises(Conflict, match="being removed"):
        ctl.add_server("web", A)


def test_stopping_refuses_changes(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path)
    ctl.begin_shutdown()
    assert ctl.stopping and not ctl.ready
    with pytest.raises(Conflict, match="stopping"):
        ctl.patch_server("web", A, weight=2)


# ---- health and slow start --------------------------------------------------------


def test_health_maps_to_down_while_admin_state_is_up(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path)
    assert ctl.set_health("web", A, False, "connect refused") is True
    assert ctl.set_health("web", A, False) is False  # no change
    assert _servers(ctl.effective())[A][2] == "down"
    assert _servers(ctl.configured())[A][2] == "up"
    entry = ctl.server("web", A)
    assert entry["state"] == "down" and entry["admin_state"] == "ready"
    assert entry["health"] == "down" and entry["health_reason"] == "connect refused"
    ctl.patch_server("web", A, state="maint")  # an admin state wins over health
    assert _servers(ctl.effective())[A][2] == "maint"
    ctl.patch_server("web", A, state="ready")
    assert _servers(ctl.effective())[A][2] == "down"
    ctl.set_health("web", A, True)
    assert _servers(ctl.effective())[A][2] == "up"
    # Health is not persisted: only the admin changes are in the file.
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved == {"version": 1, "servers": []}


def test_slow_start_weights(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path)
    ctl.patch_server("web", A, weight=10)
    ctl.set_weight("web", A, 1)
    assert _servers(ctl.effective())[A][0] == 1
    assert _servers(ctl.configured())[A][0] == 10
    ctl.set_weight("web", A, 10)  # the configured weight ends the override
    assert ctl.effective() == ctl.configured()


def test_subscribers_see_configured_changes_only(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path)
    seen: list[Config] = []
    ctl.subscribe(seen.append)
    ctl.set_health("web", A, False)
    ctl.set_weight("web", B, 1)
    assert seen == []
    ctl.add_server("web", C)
    assert seen == [ctl.configured()]


# ---- persistence ------------------------------------------------------------------


def test_state_is_persisted_and_replayed(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path)
    ctl.patch_server("web", A, weight=7, state="drain")
    ctl.add_server("web", C, weight=3, state="maint")
    ctl.begin_remove("web", B)
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["version"] == 1
    assert saved["servers"] == [
        {
            "backend": "web",
            "address": A,
            "op": "patch",
            "weight": 7,
            "state": "drain",
            "config": {"weight": 1, "state": "up"},
        },
        {"backend": "web", "address": B, "op": "remove"},
        {"backend": "web", "address": C, "op": "add", "weight": 3, "max_conn": 0, "state": "maint"},
    ]
    again = _ctl(tmp_path)
    assert again.warnings == []
    assert _servers(again.effective()) == {A: (7, 0, "drain"), C: (3, 0, "maint")}


def test_replay_over_a_changed_config_lets_the_config_win(tmp_path: Path) -> None:
    ctl = _ctl(tmp_path, [A, B])
    ctl.patch_server("web", A, weight=7, state="maint")
    ctl.patch_server("web", B, weight=9)
    ctl.add_server("web", C)
    # The config now lists C itself, changed A's weight, and dropped B.
    data = config_data([A, C], state_file=str(tmp_path / "state.json"))
    data["backends"]["web"]["servers"][0]["weight"] = 4
    again = Controller(parse_config(data))
    assert again.warnings == [
        f"patch of web/{A} weight=7 dropped: the config changed weight from 1 to 4 since",
        f"patch of web/{B} dropped: the config no longer lists it",
        f"add of web/{C} dropped: the config lists that server itself",
    ]
    assert _servers(again.effective()) == {A: (4, 0, "maint"), C: (1, 0, "up")}


def test_replay_over_a_config_that_lists_an_added_server_under_another_spelling(
    tmp_path: Path,
) -> None:
    ctl = _ctl(tmp_path, [A, B])
    ctl.add_server("web", "127.000.000.001:7003")
    assert ctl.overrides().kind(("web", C)) == "add"
    data = config_data([A, B, "127.1:7003"], state_file=str(tmp_path / "state.json"))
    data["backends"]["web"]["servers"][2]["weight"] = 4
    again = Controller(parse_config(data))
    assert again.warnings == [f"add of web/{C} dropped: the config lists that server itself"]
    assert _servers(again.effective())[C] == (4, 0, "up")
    # A host name the config lists resolves to the added address.
    if socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)[0][4][0] == "127.0.0.1":
        data["backends"]["web"]["servers"][2]["address"] = "localhost:7003"
        again = Controller(parse_config(data))
        assert again.warnings == [
            f"add of web/{C} dropped: the config lists that server itself, as localhost:7003"
        ]
        assert _servers(again.effective())["localhost:7003"] == (4, 0, "up")


def test_replay_drops_removals_that_empty_a_backend(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, "servers": [
        {"backend": "web", "address": A, "op": "remove"},
        {"backend": "gone", "address": A, "op": "patch", "weight": 2},
    ]}))  # fmt: skip
    ctl = Controller(make_config([A], state_file=str(path)))
    assert ctl.warnings == [
        f"patch of gone/{A} dropped: no backend 'gone' in the config",
        f"remove of web/{A} dropped: backend 'web' would have no server",
    ]
    assert list(_servers(ctl.effective())) == [A]


def test_state_file_of_an_earlier_version_with_addresses_as_written(tmp_path: Path) -> None:
    """Earlier versions kept addresses as written and let one endpoint be
    added under several spellings: each entry now names its server by the
    canonical address, and what would make one server twice is dropped
    with a warning instead of stopping the start."""
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, "servers": [
        {"backend": "web", "address": "127.000.000.001:7001", "op": "patch", "weight": 5,
         "config": {"weight": 1}},
        {"backend": "web", "address": "127.0.0.1:7003", "op": "add", "weight": 2},
        {"backend": "web", "address": "127.000.000.001:7003", "op": "add", "weight": 3},
        {"backend": "web", "address": "LOCALHOST:7003", "op": "add", "weight": 4},
        {"backend": "web", "address": "127.1:7002", "op": "add"},
    ]}))  # fmt: skip
    ctl = Controller(make_config(["127.000.000.001:7001", B], state_file=str(path)))
    localhost = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)[0][4][0]
    same = f"localhost:7003 is the same server as {C} (both are {C})"
    assert ctl.warnings == [
        "add of web/127.000.000.001:7003 dropped: an earlier entry is about the same server, "
        f"web/{C}",
        f"add of web/{B} dropped: the config lists that server itself",
        *([f"add of web/localhost:7003 dropped: {same}"] if localhost == "127.0.0.1" else []),
    ]
    assert _servers(ctl.effective())[A] == (5, 0, "up")
    assert _servers(ctl.effective())[C] == (2, 0, "up")
    assert set(_servers(ctl.effective())) >= {A, B, C}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"version": 9, "servers": []}', "not a fastlb state file of version 1"),
        ('{"version": 1, "servers": [{"op": "remove"}]}', "servers[0]: missing key 'backend'"),
        (
            '{"version": 1, "servers": [{"backend": "web", "address": "h:1", "op": "zap"}]}',
            "unknown op 'zap'",
        ),
    ],
)
def test_bad_state_file(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "state.json").write_text(text)
    with pytest.raises(StateError, match=r"state\.json") as info:
        _ctl(tmp_path)
    assert problem in str(info.value)


def test_invalid_entries_are_dropped_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({"version": 1, "servers": [
        {"backend": "web", "address": C, "op": "add", "weight": -1},
        {"backend": "web", "address": "nowhere.invalid:80", "op": "add"},
        {"backend": "web", "address": B, "op": "patch", "weight": 2},
    ]}))  # fmt: skip
    ctl = _ctl(tmp_path)
    assert ctl.warnings[0] == (
        f"add of web/{C} dropped: weight: Input should be greater than or equal to 0"
    )
    assert ctl.warnings[1].startswith("add of web/nowhere.invalid:80 dropped: address: ")
    assert len(ctl.warnings) == 2
    assert _servers(ctl.effective()) == {A: (1, 0, "up"), B: (2, 0, "up")}


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctl = _ctl(tmp_path)
    ctl.patch_server("web", A, weight=2)
    path = tmp_path / "state.json"
    before = path.read_bytes()
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StateError, match="No space left"):
        ctl.patch_server("web", A, weight=3)
    assert synced, "the temp file is fsynced before the rename"
    assert path.read_bytes() == before  # the old file is whole
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp left
    # Nothing changed in memory either.
    assert _servers(ctl.effective())[A] == (2, 0, "up")
    monkeypatch.undo()
    ctl.patch_server("web", A, weight=3)
    assert json.loads(path.read_text())["servers"][0]["weight"] == 3


def test_no_state_file_no_persistence(tmp_path: Path) -> None:
    ctl = Controller(make_config([A, B]))
    ctl.patch_server("web", A, weight=2)
    assert list(tmp_path.iterdir()) == []


def test_state_round_trip() -> None:
    base = make_config([A, B])
    ov = state.Overrides().with_patch(("web", A), base.backends["web"].servers[0], {"weight": 3})
    ov = ov.with_removed(("web", B))
    assert state.from_json(state.to_json(ov), "x") == (ov, [])


# ---- reload -----------------------------------------------------------------------


def test_reload(tmp_path: Path) -> None:
    path = tmp_path / "fastlb.toml"
    path.write_text(toml_config([A, B], state_file=str(tmp_path / "state.json")))
    ctl = Controller(parse_config(config_data([A, B])), path=str(path))
    ctl.patch_server("web", A, weight=9)
    ctl.patch_server("web", B, state="maint")
    path.write_text(toml_config([A, B, C], weights={B: 5}))
    assert ctl.reload() == []
    assert _servers(ctl.effective()) == {A: (9, 0, "up"), B: (5, 0, "maint"), C: (1, 0, "up")}
    assert ctl.reloads == {"ok": 1, "error": 0}
    # A bad file changes nothing.
    before = ctl.effective()
    path.write_text(toml_config([A]).replace('mode = "http"', 'mode = "udp"'))
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.mode"):
        ctl.reload()
    assert ctl.effective() is before
    assert ctl.reloads == {"ok": 1, "error": 1}
    # The config wins where it now contradicts an override.
    path.write_text(toml_config([B, C], weights={B: 5}, bind="127.0.0.1:1"))
    warnings = ctl.reload()
    assert warnings == [
        f"patch of web/{A} dropped: the config no longer lists it",
        "admin.bind changed: restart fastlb to apply it",
    ]
    assert _servers(ctl.effective()) == {B: (5, 0, "maint"), C: (1, 0, "up")}


def test_reload_needs_a_file(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="no config file"):
        _ctl(tmp_path).reload()


# ---- on a running engine ----------------------------------------------------------


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    servers = [Backend("a"), Backend("b")]
    yield servers
    for server in servers:
        server.close()


@pytest.fixture
def running(backends: list[Backend], tmp_path: Path) -> Iterator[tuple[Controller, str]]:
    ctl = _ctl(tmp_path, [b.address for b in backends])
    ctl.start()
    host, port = ctl.addresses()["web"]
    yield ctl, f"http://{host}:{port}"
    ctl.stop()


def _names(url: str, n: int) -> set[bytes]:
    return {get(url + "/")[1] for _ in range(n)}


def test_changes_reach_the_engine(running: tuple[Controller, str], backends: list[Backend]) -> None:
    ctl, url = running
    a = backends[0]
    assert ctl.ready
    assert _names(url, 6) == {b"a", b"b"}
    ctl.set_health("web", a.address, False)
    assert ctl.stats()["backends"]["web"]["servers"][a.address]["state"] == "down"
    assert _names(url, 6) == {b"b"}
    ctl.set_health("web", a.address, True)
    assert _names(url, 6) == {b"a", b"b"}


def test_drain_then_remove(running: tuple[Controller, str], backends: list[Backend]) -> None:
    ctl, url = running
    a, _ = backends
    ctl.patch_server("web", backends[1].address, state="maint")  # /slow goes to a
    slow = threading.Thread(target=get, args=(url + "/slow",))
    slow.start()
    assert wait_for(lambda: ctl.active("web", a.address) == 1)
    ctl.patch_server("web", backends[1].address, state="ready")
    loop = LoopThread()
    loop.start()
    try:
        removal = loop.submit(ctl.drain_then_remove("web", a.address))
        assert wait_for(lambda: ctl.server("web", a.address)["state"] == "drain")
        assert _names(url, 4) == {b"b"}  # no new request reaches a draining server
        assert not removal.done()  # the slow request still runs on a
        a.release.set()
        removal.result(5)
        slow.join(5)
    finally:
        loop.stop()
    assert list(_servers(ctl.effective())) == [backends[1].address]
    with pytest.raises(NotFound):
        ctl.server("web", a.address)


def test_drain_timeout(tmp_path: Path) -> None:
    """A connection that outlives drain_timeout does not hold the removal."""
    with socket.socket() as srv:
        srv.bind((HOST, 0))
        srv.listen(8)
        address = f"{HOST}:{srv.getsockname()[1]}"
        data = config_data([address, "127.0.0.1:7009"])
        data["global"]["drain_timeout"] = "300ms"
        data["listeners"][0] = {"name": "l4", "bind": f"{HOST}:0", "backend": "web"}
        ctl = Controller(parse_config(data))
        ctl.patch_server("web", "127.0.0.1:7009", state="maint")
        ctl.start()
        try:
            with socket.create_connection(ctl.addresses()["l4"]) as client:
                client.sendall(b"x")
                assert wait_for(lambda: ctl.active("web", address) == 1)
                asyncio.run(asyncio.wait_for(ctl.drain_then_remove("web", address), 3))
                assert address not in _servers(ctl.effective())
        finally:
            ctl.stop()
