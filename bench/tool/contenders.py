"""The contenders: what each is, which modes it can run in (and why not the
others), how to get it when it is missing, and the command that runs it on
a Target.  A contender runs in `mode http` for the L7 scenarios and in
`mode tcp` for the L4 ones; "direct" is wrk against the backend itself."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import FASTLB_SITE
from bench.tool import configs
from bench.tool.configs import Mode, Target
from bench.tool.procs import which

# Where Debian's libnginx-mod-stream puts the module (first), then other common layouts.
STREAM_MODULE_PATHS = (
    "/usr/lib/nginx/modules/ngx_stream_module.so",
    "/usr/lib64/nginx/modules/ngx_stream_module.so",
    "/usr/share/nginx/modules/ngx_stream_module.so",
    "/usr/local/nginx/modules/ngx_stream_module.so",
)
PROXYPY_PLUGIN_SOURCE = Path(__file__).with_name("proxypy_plugin.py")


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    modes: dict[Mode, str]  # how it runs in each mode it can do
    cannot: dict[Mode, str] = field(default_factory=dict)  # why it cannot do a mode
    install: str = ""  # what brings it, when missing


CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "fastlb",
        "fastlb",
        {"http": 'listener mode = "http", keepalive = 64', "tcp": 'listener mode = "tcp"'},
        install="build the extensions: python setup.py build_ext --inplace",
    ),
    Contender(
        "haproxy",
        "HAProxy",
        {"http": "mode http, http-reuse always", "tcp": "mode tcp"},
        install="Debian package haproxy (apt-get install haproxy)",
    ),
    Contender(
        "nginx",
        "NGINX",
        {"http": "proxy_pass, upstream keepalive 64", "tcp": "stream"},
        install="Debian packages nginx libnginx-mod-stream (apt-get install nginx "
        "libnginx-mod-stream)",
    ),
    Contender(
        "proxy.py",
        "proxy.py",
        {
            "http": "--enable-reverse-proxy, a routing plugin, --threaded; "
            "a new backend connection per request"
        },
        cannot={
            "tcp": "proxy.py only speaks HTTP: its tunnels are HTTP CONNECT and SSH, it has "
            "no plain TCP forwarding"
        },
        install="PyPI package proxy.py (pip install proxy.py)",
    ),
    Contender(
        "pproxy",
        "pproxy",
        {"tcp": "tunnel listener, tunnel:// remotes, -s rr"},
        cannot={
            "http": "pproxy is a forward proxy (HTTP CONNECT or absolute-URI requests, SOCKS, "
            "Shadowsocks) with no reverse-proxy mode: a plain `GET /small` to its http "
            "listener is refused"
        },
        install="PyPI package pproxy (pip install pproxy)",
    ),
    Contender("direct", "direct to the backend", {"http": "no proxy", "tcp": "no proxy"}),
)
BY_NAME = {c.name: c for c in CONTENDERS}
NAMES = tuple(BY_NAME)


class StreamModuleMissing(RuntimeError):
    """This nginx has no stream module (Debian: install libnginx-mod-stream)."""


# ---------------------------------------------------------------- finding them


@dataclass
class Tools:
    """The programs found: wrk ("" when missing and not needed), nginx (the backend, else the
    stand-in), haproxy, NGINX's stream module line ('' when built in, None
    when missing)."""

    wrk: str
    nginx: str | None
    haproxy: str | None
    stream_module: str | None


@dataclass
class Probe:
    """How contenders are looked for; tests swap these."""

    which: Callable[..., str | None] = which
    has_dist: Callable[[str, str], bool] = lambda dist, module: has_distribution(dist, module)
    stream_module: Callable[[str], str] = lambda nginx: stream_module_directive(nginx)
    fastlb_problem: Callable[[], str | None] = lambda: fastlb_problem()


def has_distribution(dist: str, module: str) -> bool:
    """Whether this Python has the PyPI distribution dist, importable as module."""
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return importlib.util.find_spec(module) is not None


def nginx_build_options(nginx: str) -> str:
    """The configure arguments `nginx -V` prints (on stderr)."""
    done = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False)
    return done.stderr + done.stdout


def stream_module_directive(nginx: str) -> str:
    """The `load_module` line nginx needs for `stream {}`, or "" when the module
    is built in.  Raises StreamModuleMissing when nginx has no stream module."""
    options = nginx_build_options(nginx)
    if re.search(r"--with-stream(\s|$)", options):
        return ""
    if "--with-stream=dynamic" not in options:
        raise StreamModuleMissing(f"{nginx} was built without the stream module")
    for candidate in STREAM_MODULE_PATHS:
        if os.path.isfile(candidate):
            return f"load_module {candidate};\n"
    raise StreamModuleMissing("ngx_stream_module.so not found in " + ", ".join(STREAM_MODULE_PATHS))


def fastlb_problem() -> str | None:
    """Why `python -m fastlb run` cannot work here, or None."""
    env = dict(os.environ, PYTHONPATH=FASTLB_SITE)
    for probe in (["-m", "fastlb", "run", "--help"], ["-c", "import fastlb.engine"]):
        done = subprocess.run(
            [sys.executable, *probe],
            capture_output=True,
            text=True,
            env=env,
            cwd=FASTLB_SITE,
            check=False,
        )
        if done.returncode != 0:
            detail = done.stderr.strip().splitlines()[-1:] or ["no detail"]
            return f"this fastlb has no engine support ({detail[0]})"
    return None


def find_tools(probe: Probe, need_wrk: bool = True) -> Tools:
    """wrk, nginx, haproxy and the stream module.  SystemExit without wrk
    when it is needed; "" for it when it is not needed and missing."""
    wrk = probe.which("wrk", "/usr/bin/wrk")
    if wrk is None and need_wrk:
        raise SystemExit("bench: wrk not found; it is the Debian package wrk (apt-get install wrk)")
    nginx = probe.which("nginx", "/usr/sbin/nginx")
    stream: str | None = None
    if nginx:
        try:
            stream = probe.stream_module(nginx)
        except StreamModuleMissing:
            stream = None
    return Tools(wrk or "", nginx, probe.which("haproxy", "/usr/sbin/haproxy"), stream)


def missing(names: list[str], tools: Tools, probe: Probe) -> dict[str, str]:
    """The wanted contenders that cannot run here, each with what would bring it."""
    why: dict[str, str] = {}
    for name in names:
        install = BY_NAME[name].install
        if name == "fastlb":
            problem = probe.fastlb_problem()
            if problem:
                why[name] = f"{problem}; {install}"
        elif name == "haproxy" and tools.haproxy is None:
            why[name] = f"haproxy not found; {install}"
        elif name == "nginx" and tools.nginx is None:
            why[name] = f"nginx not found; {install}"
        elif name == "proxy.py" and not probe.has_dist("proxy.py", "proxy"):
            why[name] = f"proxy.py is not installed in {sys.executable}; {install}"
        elif name == "pproxy" and not probe.has_dist("pproxy", "pproxy"):
            why[name] = f"pproxy is not installed in {sys.executable}; {install}"
    return why


def cannot(name: str, mode: Mode, tools: Tools) -> str | None:
    """Why contender name cannot run in mode here, or None when it can."""
    reason = BY_NAME[name].cannot.get(mode)
    if reason:
        return reason
    if name == "nginx" and mode == "tcp" and tools.stream_module is None:
        return "this NGINX has no stream module; Debian package libnginx-mod-stream"
    return None


# ---------------------------------------------------------------- running them


@dataclass(frozen=True)
class Launch:
    """The command(s) that run a contender (several: copies sharing the
    port with SO_REUSEPORT) and their environment (None: inherited)."""

    cmds: list[list[str]]
    env: dict[str, str] | None = None


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _nginx(tools: Tools, t: Target, name: str, text: str) -> Launch:
    assert tools.nginx
    temp = t.run_dir / "nginx-temp"
    temp.mkdir(exist_ok=True)
    temp.chmod(0o777)  # workers may run as nobody and spool bodies here
    _write(t.run_dir / f"{name}.conf", text)
    return Launch([configs.nginx_argv(tools.nginx, t.run_dir, name)])


def launch(name: str, mode: Mode, t: Target, tools: Tools) -> Launch:
    """Write contender name's config for mode into t.run_dir; the command."""
    if name == "fastlb":
        conf = _write(t.run_dir / f"fastlb-{mode}.toml", configs.fastlb_toml(mode, t))
        cmd = [sys.executable, "-m", "fastlb", "run", "--config", str(conf)]
        cmd += ["--workers", str(t.workers), "--log-level", "warning"]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [FASTLB_SITE, env.get("PYTHONPATH")]))
        return Launch([cmd], env)
    if name == "haproxy":
        assert tools.haproxy
        conf = _write(t.run_dir / f"haproxy-{mode}.cfg", configs.haproxy_cfg(mode, t))
        return Launch([[tools.haproxy, "-db", "-f", str(conf)]])
    if name == "nginx" and mode == "http":
        return _nginx(tools, t, "nginx-http", configs.nginx_http_conf(t))
    if name == "nginx":
        return _nginx(
            tools, t, "nginx-stream", configs.nginx_stream_conf(t, tools.stream_module or "")
        )
    if name == "proxy.py":
        shutil.copy(PROXYPY_PLUGIN_SOURCE, t.run_dir / "bench_proxypy_plugin.py")
        env = dict(os.environ, BENCH_UPSTREAMS=configs.proxypy_upstreams(t))
        env["PYTHONPATH"] = str(t.run_dir)
        return Launch([[sys.executable, *configs.proxypy_args(t)]], env)
    if name == "pproxy":
        return Launch([[sys.executable, *configs.pproxy_args(t)]] * t.workers)
    raise ValueError(f"contender {name} runs no process")
