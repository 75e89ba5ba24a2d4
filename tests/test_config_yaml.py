"""YAML config files: one schema with TOML, the same values and the same
errors (file, key path, every problem at once, did-you-mean), and syntax
errors at a line and column."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastlb_cli import run_fastlb

from fastlb.config import ConfigError, load_config
from fastlb.formats import FormatError, format_of, loads

GOOD_TOML = """
[global]
workers = 2
max_connections = 100000
drain_timeout = 60

[[listeners]]
name = "pg"
bind = "127.0.0.1:5433"
mode = "tcp"
backend = "pg"
connect_timeout = "3s"
idle_timeout = "1h"

[backends.pg]
balance = "least_conn"
retries = 2
fail_timeout = 1.5
servers = [
  { address = "127.0.0.1:5432", weight = 2 },
  { address = "127.0.0.1:5434", max_conn = 500 },
]
"""

GOOD_YAML = """
global:
  workers: 2
  max_connections: 100000
  drain_timeout: 60

listeners:
  - name: pg
    bind: 127.0.0.1:5433
    mode: tcp
    backend: pg
    connect_timeout: 3s
    idle_timeout: 1h

backends:
  pg:
    balance: least_conn
    retries: 2
    fail_timeout: 1.5
    servers:
      - address: 127.0.0.1:5432
        weight: 2
      - { address: 127.0.0.1:5434, max_conn: 500 }
"""

HTTP_YAML = """
listeners:
  - name: web
    bind: 127.0.0.1:8080
    mode: http
    backend: web
    max_header_size: 16KiB
    routes:
      - match: { headers: { X-Canary: yes }, cookies: { beta: on } }
        backend: web
        max_body_size: 1024
backends:
  web:
    servers: [{ address: 127.0.0.1:80 }]
"""


def _write(tmp_path: Path, text: str, name: str = "fastlb.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _errors(tmp_path: Path, text: str, name: str = "fastlb.yaml") -> list[str]:
    path = _write(tmp_path, text, name)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    for line in str(info.value).splitlines():
        assert line.startswith(f"{path}: ")
    return info.value.errors


def test_yaml_equals_toml(tmp_path: Path) -> None:
    from_toml = load_config(_write(tmp_path, GOOD_TOML, "a.toml"))
    from_yaml = load_config(_write(tmp_path, GOOD_YAML, "a.yaml"))
    assert from_yaml == from_toml
    assert from_yaml.global_.drain_timeout == 60.0  # an int: seconds
    assert from_yaml.listeners[0].connect_timeout == 3.0  # a string: "3s"
    assert from_yaml.backends["pg"].fail_timeout == 1.5  # a float


@pytest.mark.parametrize("name", ["a.yml", "a.YAML", "a.Yml"])
def test_yml_suffixes(tmp_path: Path, name: str) -> None:
    assert load_config(_write(tmp_path, GOOD_YAML, name)).listeners[0].name == "pg"


def test_sizes_and_plain_scalars(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, HTTP_YAML))
    listener = config.listeners[0]
    assert listener.max_header_size == 16384
    route = listener.routes[0]
    assert route.max_body_size == 1024
    # YAML 1.2 plain scalars: "yes" and "on" are strings, not true
    # (which would mean "is present").
    assert route.match.headers == {"X-Canary": "yes"}
    assert route.match.cookies == {"beta": "on"}


def test_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    text = GOOD_YAML.replace("    mode: tcp", "    mode: tcp: udp")
    line = text.splitlines().index("    mode: tcp: udp") + 1
    column = len("    mode: tcp:")  # the second ':', counted from 1
    errors = _errors(tmp_path, text)
    assert errors == [
        f"YAML syntax error: mapping values are not allowed here (at line {line}, column {column})"
    ]


def test_syntax_error_with_context(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "listeners: [1, 2\nbackends: {}\n")
    assert len(errors) == 1
    assert errors[0].startswith("YAML syntax error: expected ',' or ']', but got ':'")
    assert "(at line 2, column 9; while parsing a flow sequence at line 1, column 12)" in errors[0]


def test_error_names_file_and_key_path(tmp_path: Path) -> None:
    errors = _errors(tmp_path, GOOD_YAML.replace("127.0.0.1:5434", "127.0.0.1:99999"))
    assert errors == [
        "backends.pg.servers[1].address: '127.0.0.1:99999': the port must be a number in 0..65535"
    ]


def test_unknown_keys_suggest(tmp_path: Path) -> None:
    text = GOOD_YAML.replace("  workers: 2", "  wokers: 2").replace("weight: 2", "wieght: 2")
    errors = _errors(tmp_path, text)
    assert errors == [
        "global.wokers: unknown key (did you mean 'workers'?)",
        "backends.pg.servers[0].wieght: unknown key (did you mean 'weight'?)",
    ]


def test_every_error_at_once(tmp_path: Path) -> None:
    text = (
        GOOD_YAML.replace("backend: pg", "backend: pgg")
        .replace("least_conn", "least_con")
        .replace("connect_timeout: 3s", "connect_timeout: 3 parsecs")
        .replace("idle_timeout: 1h", "idle_timeout: 1h\n    header_timeout: 5s")
    )
    errors = _errors(tmp_path, text)
    assert "listeners[0].backend: no backend named 'pgg' (did you mean 'pg'?)" in errors
    assert any(e.startswith("backends.pg.balance: Input should be") for e in errors)
    assert (
        "listeners[0].connect_timeout: '3 parsecs' is not a duration: "
        "write it like '2s', '150ms', '1h'"
    ) in errors
    assert 'listeners[0].header_timeout: only valid with mode = "http"' in errors
    assert len(errors) == 4


def test_wrong_types_are_reported_like_toml(tmp_path: Path) -> None:
    errors = _errors(tmp_path, GOOD_YAML.replace("weight: 2", "weight: heavy"))
    assert len(errors) == 1 and errors[0].startswith("backends.pg.servers[0].weight: Input should")


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    text = GOOD_YAML.replace("    backend: pg\n", "    backend: pg\n    backend: pg2\n")
    line = text.splitlines().index("    backend: pg2") + 1
    assert _errors(tmp_path, text) == [
        f"YAML syntax error: key 'backend' is given twice (at line {line}, column 5)"
    ]


def test_merge_keys_and_anchors(tmp_path: Path) -> None:
    text = """
listeners:
  - &common { name: a, bind: 127.0.0.1:1, backend: b, idle_timeout: 5m }
  - <<: *common
    name: c
    bind: 127.0.0.1:2
backends:
  b: { servers: [{ address: 127.0.0.1:3 }] }
"""
    config = load_config(_write(tmp_path, text))
    assert [(x.name, x.port, x.idle_timeout) for x in config.listeners] == [
        ("a", 1, 300.0),
        ("c", 2, 300.0),
    ]


def test_keys_are_the_text_written(tmp_path: Path) -> None:
    text = GOOD_YAML.replace("backend: pg", "backend: '2024'").replace("  pg:", "  2024:")
    config = load_config(_write(tmp_path, text))
    assert list(config.backends) == ["2024"]


def test_values_yaml_11_would_change() -> None:
    data = loads(
        "a: yes\nb: off\nc: 2024-01-01\nd: 1:30\ne: 010\nf: 0x1f\ng: true\nh: 1e3\n", "x.yaml"
    )
    assert data == {
        "a": "yes",
        "b": "off",
        "c": "2024-01-01",
        "d": "1:30",
        "e": 10,
        "f": 31,
        "g": True,
        "h": 1000.0,
    }


def test_python_tags_are_refused() -> None:
    with pytest.raises(FormatError, match="could not determine a constructor"):
        loads("global: !!python/object/apply:os.system ['true']\n", "x.yaml")


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "a list"), ("just text\n", "a single value")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    errors = _errors(tmp_path, text)
    assert errors == [
        f"the file holds {kind}: it must be a mapping of keys (global, listeners, backends, admin)"
    ]


def test_empty_file_misses_the_required_keys(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "# nothing yet\n")
    assert errors == ["listeners: required key is missing", "backends: required key is missing"]


def test_other_suffix_is_read_as_toml(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, GOOD_TOML, "fastlb.conf")).listeners[0].name == "pg"
    errors = _errors(tmp_path, GOOD_YAML, "fastlb.conf")
    assert len(errors) == 1
    assert errors[0].startswith("TOML syntax error: ") and "(at line 2, column " in errors[0]
    assert errors[0].endswith(
        "the file was read as TOML, since its name does not end in .toml, .yaml or .yml"
    )


def test_toml_error_at_end_of_document_has_a_position(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "listeners = [\n", "fastlb.toml")
    assert errors == ["TOML syntax error: Invalid value (at end of document, line 2, column 1)"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.toml", "x = " + "[" * 20_000 + "]" * 20_000),
        ("deep.toml", "x = " + "{ a = " * 5_000 + "1" + " }" * 5_000),
        ("deep.yaml", "x: " + "[" * 20_000 + "]" * 20_000),
        ("deep.yaml", "x:\n" + "".join("  " * i + "- \n" for i in range(1, 2_000))),
    ],
)
def test_deep_nesting_is_a_format_error(name: str, text: str) -> None:
    with pytest.raises(FormatError) as info:  # was a RecursionError (a traceback)
        loads(text, name)
    fmt = "YAML" if name.endswith(".yaml") else "TOML"
    assert str(info.value) == (
        f"{fmt}: the file nests lists or tables too deeply to be read (a config needs a few levels)"
    )


def test_nesting_a_parser_can_read_is_a_config_error(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "x = " + "[" * 300 + "]" * 300, "fastlb.toml")
    assert "x: unknown key" in errors


def test_format_of() -> None:
    assert format_of("a.toml") == "toml"
    assert format_of("/etc/fastlb/a.YML") == "yaml"
    assert format_of("a.conf") is None and format_of("toml") is None


def test_check_reports_yaml_errors_without_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_YAML.replace("  workers: 2", "  wokers: 2"))
    proc = run_fastlb("check", "--config", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{path}: global.wokers: unknown key (did you mean 'workers'?)" in proc.stderr


def test_reload_reads_yaml(tmp_path: Path) -> None:
    from fastlb.control import Controller

    path = _write(tmp_path, GOOD_YAML)
    controller = Controller(load_config(path), path=str(path))
    path.write_text(GOOD_YAML.replace("retries: 2", "retries: 5"))
    assert controller.reload() == []
    assert controller.base.backends["pg"].retries == 5
    path.write_text(GOOD_YAML.replace("retries: 2", "retries: [5"))
    with pytest.raises(ConfigError, match="YAML syntax error"):
        controller.reload()
    assert controller.base.backends["pg"].retries == 5
