"""The sample configs in examples/ and the key tables of docs/CONFIG.md.

Every example validates (and `fastlb check` says so); each TOML example
means the same in YAML; the YAML twins equal their TOML files.  The docs'
tables list exactly the models' keys, with their defaults and an example
that validates: adding a key without documenting it fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, get_args

import pytest
import yaml
from fastlb_cli import run_fastlb
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from fastlb import config as cfg
from fastlb.config import Config, load_config, tomllib

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOC = ROOT / "docs" / "CONFIG.md"

FILES = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".toml", ".yaml", ".yml"))
TOML_FILES = [p for p in FILES if p.suffix == ".toml"]
TWINS = [p for p in FILES if p.suffix != ".toml" and p.with_suffix(".toml").exists()]

# Every model a config is made of: the top level and what _CHILDREN leads to.
_ALL: list[type[BaseModel]] = [Config, *cfg._CHILDREN.values()]
MODELS: dict[str, type[BaseModel]] = {m.__name__: m for m in _ALL}
# The tables of keys that only one kind of listener or check takes.
ONLY: dict[str, tuple[str, ...]] = {
    "ListenerConfig": cfg.HTTP_ONLY,
    "HealthCheckConfig": cfg.HEALTH_HTTP_ONLY,
}


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


# ---- examples -----------------------------------------------------------------


def test_the_required_examples_exist() -> None:
    names = {p.name for p in FILES}
    assert {
        "tcp-postgres.toml",
        "http-routes.toml",
        "http-routes.yaml",
        "health-and-admin.toml",
        "sticky-and-hashing.toml",
    } <= names
    assert TWINS, "at least one YAML example has a TOML twin"


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_example_validates(path: Path) -> None:
    config = load_config(path)
    assert config.listeners and config.backends


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_fastlb_check_accepts_example(path: Path) -> None:
    proc = run_fastlb("check", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith(f"{path}: OK")


@pytest.mark.parametrize("path", TWINS, ids=_ids(TWINS))
def test_yaml_twin_equals_toml(path: Path) -> None:
    assert load_config(path) == load_config(path.with_suffix(".toml"))


@pytest.mark.parametrize("path", TOML_FILES, ids=_ids(TOML_FILES))
def test_every_toml_example_means_the_same_in_yaml(path: Path, tmp_path: Path) -> None:
    data = tomllib.loads(path.read_text())
    twin = tmp_path / path.with_suffix(".yaml").name
    twin.write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_config(twin) == load_config(path)


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_example_uses_ip_literals(path: Path) -> None:
    """Examples must validate anywhere: no name to resolve."""
    config = load_config(path)
    written = [listener.bind for listener in config.listeners] + [
        server.address for backend in config.backends.values() for server in backend.servers
    ]
    assert all(re.match(r"^(\d+\.){3}\d+:\d+$|^\[", a) for a in written), written


# ---- docs/CONFIG.md ---------------------------------------------------------------

_MARKER = re.compile(r"^<!-- keys: (\w+)(?: (http-only))? -->$")
_CODE = re.compile(r"^`([^`]+)`$")


def _doc_tables() -> list[tuple[str, bool, list[list[str]]]]:
    """(model name, http-only, rows) of each marked table; a row is its
    cells, stripped."""
    lines = DOC.read_text().splitlines()
    tables = []
    for i, line in enumerate(lines):
        match = _MARKER.match(line)
        if not match:
            continue
        header = [c.strip() for c in lines[i + 1].strip("|").split("|")]
        assert header == ["key", "default", "example", "meaning"], lines[i + 1]
        rows = []
        for row in lines[i + 3 :]:
            if not row.startswith("|"):
                break
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))])
        tables.append((match.group(1), bool(match.group(2)), rows))
    return tables


def _rows() -> list[tuple[str, list[str]]]:
    return [(model, row) for model, _, rows in _doc_tables() for row in rows]


def _key(row: list[str]) -> str:
    match = _CODE.match(row[0])
    assert match, f"the key cell {row[0]!r} is not one `key`"
    return match.group(1)


def _fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The keys of a model as written in a config file."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _adapter(field: FieldInfo) -> TypeAdapter[Any]:
    """Validation of one field's value, as in its model."""
    annotation: Any = field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]
    return TypeAdapter(annotation)


def _reachable(tp: Any, out: set[type[BaseModel]]) -> set[type[BaseModel]]:
    """The models a type annotation leads to, recursively."""
    if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in out:
        out.add(tp)
        for field in tp.model_fields.values():
            _reachable(field.annotation, out)
    for arg in get_args(tp):
        _reachable(arg, out)
    return out


def test_models_are_all_known() -> None:
    """MODELS (from config._CHILDREN) holds every model a config reaches."""
    assert _reachable(Config, set()) == set(MODELS.values())


def test_every_model_has_a_table() -> None:
    documented = {model for model, _, _ in _doc_tables()}
    assert documented == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_docs_list_exactly_the_models_keys(name: str) -> None:
    keys: list[str] = []
    for model, _, rows in _doc_tables():
        if model == name:
            keys += [_key(row) for row in rows]
    assert len(keys) == len(set(keys)), f"a key of {name} is documented twice"
    fields = set(_fields(MODELS[name]))
    assert not set(keys) - fields, f"documented but not in {name}: {set(keys) - fields}"
    assert not fields - set(keys), f"in {name} but not documented: {fields - set(keys)}"


def test_http_only_tables_match_the_models_rules() -> None:
    found: dict[str, set[str]] = {}
    for model, only, rows in _doc_tables():
        if only:
            found[model] = {_key(row) for row in rows}
    assert found == {model: set(keys) for model, keys in ONLY.items()}


@pytest.mark.parametrize(("model", "row"), _rows(), ids=[f"{m}.{_key(r)}" for m, r in _rows()])
def test_documented_default_is_the_models(model: str, row: list[str]) -> None:
    field = _fields(MODELS[model])[_key(row)]
    cell = row[1]
    if cell == "required":
        assert field.is_required()
        return
    assert not field.is_required(), f"{_key(row)} is required: document it so"
    default = field.get_default(call_default_factory=True)
    if cell == "none":
        assert default is None
        return
    match = _CODE.match(cell)
    if match is None:  # prose, for a computed default: "the number of CPUs"
        assert field.default_factory is not None, f"write the default {default!r} as code"
        return
    value = tomllib.loads(f"v = {match.group(1)}")["v"]
    assert _adapter(field).validate_python(value) == default


@pytest.mark.parametrize(("model", "row"), _rows(), ids=[f"{m}.{_key(r)}" for m, r in _rows()])
def test_documented_example_is_valid(model: str, row: list[str]) -> None:
    key = _key(row)
    match = _CODE.match(row[2])
    assert match, f"the example of {key} is not one `key = value`"
    data = tomllib.loads(match.group(1))
    assert list(data) == [key]
    _adapter(_fields(MODELS[model])[key]).validate_python(data[key])


def test_doc_blocks_are_valid() -> None:
    """The TOML and YAML blocks of docs/CONFIG.md that are whole configs
    validate; the others at least parse."""
    from fastlb.config import parse_config
    from fastlb.formats import loads

    text = DOC.read_text()
    blocks = re.findall(r"```(toml|yaml)\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    whole = 0
    for fmt, block in blocks:
        data = loads(block, f"block.{fmt}")
        if "listeners" in data and "backends" in data:
            parse_config(data, "docs/CONFIG.md")
            whole += 1
    assert whole >= 2
