"""Unit tests of the benchmark tool behind `python -m bench` (bench/tool):
wrk output parsing, medians and ratios, the report, the generated configs,
what happens when a contender is missing, the charts and the stand-in
backend.  Nothing here runs wrk or a proxy; all of it takes about a second."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.tool import cli, configs, contenders, cpucap, micro, procs, report, runner, wrk
from bench.tool.configs import Target
from bench.tool.contenders import Probe, Tools
from bench.tool.procs import BenchError
from bench.tool.scenarios import BY_NAME as SCENARIOS
from bench.tool.scenarios import CAPPED_CPUS, Settings
from fastlb.config import parse_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8080/small
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  512.00us  10.00ms   90.00%
    Req/Sec    23.94k     1.20k   25.00k    80.00%
  23812 requests in 1.00s, 5.97MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:  23801.53
Transfer/sec:      1.50GB
"""

PACED_OUTPUT = (
    WRK_OUTPUT
    + """\
PACED requests=9000 duration_us=3000000 late=90 sent=9000 max_us=4100
PACED p50=180
PACED p90=250
PACED p99=400
PACED p99.9=1200
"""
)

TOOLS = Tools(
    wrk="/usr/bin/wrk",
    nginx="/usr/sbin/nginx",
    haproxy="/usr/sbin/haproxy",
    stream_module="load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n",
)


def target(tmp_path: Path, workers: int = 1) -> Target:
    return Target(tmp_path, 8000, (8001, 8002), workers, 20_000)


# ---------------------------------------------------------------- wrk


def test_parse_wrk_reads_rates_and_errors() -> None:
    got = wrk.parse_wrk(WRK_OUTPUT)
    assert got["requests_per_s"] == pytest.approx(23801.53)
    assert got["bytes_per_s"] == pytest.approx(1.5 * 1024**3)
    assert got["requests"] == 23812
    assert got["socket_errors"] == [0, 12, 0, 3]
    assert got["non_2xx"] == 5
    assert not wrk.too_many_errors(got)  # 20 bad of 23,812 is under 1%


def test_parse_wrk_without_errors_and_plain_bytes() -> None:
    text = "  10 requests in 1.00s, 900B read\nRequests/sec:     10.00\nTransfer/sec:     900B\n"
    got = wrk.parse_wrk(text)
    assert (got["requests"], got["bytes_per_s"], got["socket_errors"]) == (10, 900.0, [0] * 4)


def test_parse_wrk_rejects_other_output() -> None:
    with pytest.raises(BenchError, match="cannot read wrk"):
        wrk.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_too_many_errors() -> None:
    base = {"requests": 10_000, "socket_errors": [0, 0, 0, 0], "non_2xx": 0}
    assert not wrk.too_many_errors(base)
    assert not wrk.too_many_errors({**base, "non_2xx": 100})  # 1% is allowed
    assert wrk.too_many_errors({**base, "non_2xx": 101})
    assert wrk.too_many_errors({**base, "socket_errors": [0, 0, 0, 200]})
    assert wrk.too_many_errors({**base, "requests": 0})


def test_parse_paced_reads_percentiles_and_late_sends() -> None:
    got = wrk.parse_paced(PACED_OUTPUT)
    assert got["achieved_per_s"] == pytest.approx(3000.0)
    assert got["late_fraction"] == pytest.approx(0.01)
    assert (got["p50_us"], got["p90_us"], got["p99_us"], got["p99.9_us"]) == (180, 250, 400, 1200)
    with pytest.raises(BenchError, match=r"paced\.lua"):
        wrk.parse_paced(WRK_OUTPUT)


def test_wrk_command_for_close_and_paced_runs() -> None:
    spec = wrk.WrkRun("wrk", 9000, "/small", 1.4, 50, headers=("Connection: close",))
    assert spec.command() == [
        "wrk",
        "-t1",
        "-c50",
        "-d1s",
        "-H",
        "Connection: close",
        "http://127.0.0.1:9000/small",
    ]
    paced = wrk.WrkRun("wrk", 9000, "/small", 0.2, 50, script=wrk.PACED_SCRIPT).command()
    assert "-d1s" in paced and paced[-3:-1] == ["-s", str(wrk.PACED_SCRIPT)]
    assert wrk.PACED_SCRIPT.is_file()
    assert "BENCH_RATE" in wrk.PACED_SCRIPT.read_text()


def test_scenario_runs_use_the_scenario_options() -> None:
    s = Settings(
        wrk="wrk", duration=5, warmup=1, connections=50, many_conns=5000, idle_conns=100, settle=1.0
    )
    close = SCENARIOS["l7-close"]
    many = SCENARIOS["many"]
    assert "Connection: close" in runner_cmd(s, close)
    assert "-c5000" in runner_cmd(s, many) and "-c50" in runner_cmd(s, SCENARIOS["l4-1m"])
    assert runner_cmd(s, SCENARIOS["l4-1m"])[-1].endswith("/1m")


def runner_cmd(s: Settings, scenario: Any) -> list[str]:
    from bench.tool.scenarios import wrk_run

    return wrk_run(s, scenario, 1234, s.duration, paced=False).command()


# ---------------------------------------------------------------- medians, ratios, report


def entry(scenario: str, name: str, round_no: int, **result: float) -> dict[str, Any]:
    return {"scenario": scenario, "contender": name, "round": round_no, "result": result}


def synthetic_runs() -> list[dict[str, Any]]:
    runs = []
    for round_no, (fast, hap, direct) in enumerate(
        [(200.0, 100.0, 400.0), (220.0, 90.0, 390.0), (180.0, 110.0, 410.0)], start=1
    ):
        runs.append(entry("l7-small", "fastlb", round_no, requests_per_s=fast, cpu_us_per_req=5))
        runs.append(entry("l7-small", "haproxy", round_no, requests_per_s=hap, cpu_us_per_req=10))
        runs.append(entry("l7-small", "direct", round_no, requests_per_s=direct))
    runs.append(entry("idle", "fastlb", 1, bytes_per_conn=500.0))
    runs.append(entry("idle", "haproxy", 1, bytes_per_conn=1000.0))
    runs.append({"scenario": "idle", "contender": "nginx", "round": 1, "error": "boom\nlogs"})
    return runs


def test_medians_and_ratios() -> None:
    meds = report.medians(synthetic_runs())
    assert meds["l7-small"]["fastlb"] == {"requests_per_s": 200.0, "cpu_us_per_req": 5.0}
    assert meds["l7-small"]["haproxy"]["requests_per_s"] == 100.0
    assert meds["idle"]["nginx"] == {}  # failed: no figure, but it was tried
    got = report.ratios(meds, "l7-small", "fastlb", "requests_per_s")
    assert got == {"haproxy": pytest.approx(2.0), "direct": pytest.approx(0.5)}
    assert report.ratios(meds, "l7-small", "fastlb", "cpu_us_per_req") == {
        "haproxy": pytest.approx(0.5),
        "direct": None,  # direct has no proxy CPU
    }
    assert report.ratio(1.0, 0.0) is None and report.ratio(None, 2.0) is None


def test_spread() -> None:
    assert report.spread([180.0, 200.0, 220.0]) == pytest.approx(0.1)
    assert report.spread([5.0]) is None


def test_offered_rate_is_half_the_slowest_proxy() -> None:
    assert runner.offered_rate(synthetic_runs()) == (50, "haproxy")
    only_direct = [entry("l7-small", "direct", 1, requests_per_s=1000.0)]
    assert runner.offered_rate(only_direct) == (500, "direct")
    assert runner.offered_rate([]) == (None, None)


def test_a_python_proxy_sets_no_rate_and_is_left_out_when_too_slow() -> None:
    runs = [*synthetic_runs(), entry("l7-small", "proxy.py", 1, requests_per_s=30.0)]
    assert runner.offered_rate(runs) == (50, "haproxy")
    slow = runner.too_slow(runs, 50)
    assert list(slow) == ["proxy.py"]
    assert "maximum (30 req/s) is below the offered rate (50 req/s)" in slow["proxy.py"]
    only_python = [entry("l7-small", "proxy.py", 1, requests_per_s=30.0)]
    assert runner.offered_rate(only_python) == (15, "proxy.py")


def info_for(names: list[str], scenarios: list[str]) -> dict[str, Any]:
    return {
        "machine": {
            "cpu": "Test CPU",
            "logical_cpus": 2,
            "usable_cpus": 2,
            "kernel": "Linux 6.1",
            "python": "3.11.7",
        },
        "versions": {"haproxy": "HAProxy version 2.6.12-1+deb12u4 2026/10/17", "wrk": "wrk 4.1.0"},
        "backend": "NGINX 1.22.1",
        "options": {
            "rounds": 3,
            "connections": 50,
            "duration": 5.0,
            "warmup": 1.0,
            "many_conns": 5000,
            "workers": 1,
            "cpus": None,
        },
        "nofile": 20_000,
        "missing": {"pproxy": "pproxy is not installed; PyPI package pproxy (pip install pproxy)"},
        "cannot": {"direct": {"idle": "there is no proxy process to measure"}},
        "rate": {"offered": None, "skipped": "no rate"},
        "contenders": names,
        "scenarios": scenarios,
    }


def test_report_has_tables_ratios_and_reasons() -> None:
    info = info_for(["fastlb", "haproxy", "nginx", "direct"], ["l7-small", "idle"])
    text = report.render(info, synthetic_runs(), "### Micro benchmarks\n")
    assert "Test CPU, 2 logical CPUs" in text and "haproxy 2.6.12-1+deb12u4" in text
    row = next(line for line in text.splitlines() if line.startswith("| fastlb (listener"))
    assert "| 200 | 2.00x | 0.50x | 5.0 µs | 0.50x |" in row
    assert "| 500 B | 0.50x |" in text  # idle: fastlb against HAProxy
    assert "pip install pproxy" in text and "direct has no `idle`" in text
    assert "1 run(s) failed: nginx (idle round 1)" in text
    assert "±10% (3/3 ok)" in text
    assert "### Micro benchmarks" in text


def test_short_version() -> None:
    assert report.short_version("HAProxy version 2.6.12-1+deb12u4 2026/10/17 - x") == (
        "2.6.12-1+deb12u4"
    )
    assert report.short_version("nginx version: nginx/1.22.1") == "1.22.1"
    assert report.short_version("wrk debian/4.1.0-3+b2 [epoll]") == "4.1.0-3+b2"
    assert report.short_version("2.4.10") == "2.4.10"


def test_micro_markdown_has_the_targets() -> None:
    meds = {
        "bench_fastlb_parse_request": 500e-9,
        "bench_httptools_parse_request": 1600e-9,
        "bench_fastlb_maglev_build_100": 1e-3,
    }
    text = micro.markdown({"medians_s": meds, "runs_s": {k: [v] for k, v in meds.items()}})
    assert "| `bench_fastlb_parse_request` | 500 ns |" in text
    assert "| parse_request vs httptools (peer time / fastlb time) | 3.2x | >= 3x | yes |" in text
    assert "| 1.00 ms | <= 5.00 ms | yes |" in text


def test_micro_reads_pytest_benchmark_json() -> None:
    data = {"benchmarks": [{"name": "bench_x", "stats": {"median": 1.5e-6, "mean": 2e-6}}]}
    assert micro.read_medians(data) == {"bench_x": 1.5e-6}
    cmd = micro.pytest_command(Path("/tmp/x.json"), 0.5)
    assert "--benchmark-json=/tmp/x.json" in cmd and "--benchmark-enable" in cmd


# ---------------------------------------------------------------- configs


def test_haproxy_configs(tmp_path: Path) -> None:
    http = configs.haproxy_cfg("http", target(tmp_path, workers=2))
    assert "mode http" in http and "http-reuse always" in http and "option forwardfor" in http
    assert "nbthread 2" in http and "bind 127.0.0.1:8000" in http
    assert "server s1 127.0.0.1:8001" in http and "server s2 127.0.0.1:8002" in http
    tcp = configs.haproxy_cfg("tcp", target(tmp_path))
    assert "mode tcp" in tcp and "http-reuse" not in tcp and "nbthread 1" in tcp
    assert "maxconn 7960" in tcp  # 20,000 descriptors allow 2.5 per connection


def test_nginx_configs(tmp_path: Path) -> None:
    http = configs.nginx_http_conf(target(tmp_path, workers=2))
    assert "worker_processes 2;" in http and "proxy_pass http://web;" in http
    assert "keepalive 64;" in http and 'proxy_set_header Connection "";' in http
    assert "access_log off;" in http and "listen 127.0.0.1:8000" in http
    stream = configs.nginx_stream_conf(target(tmp_path), "load_module /x/stream.so;\n")
    assert stream.startswith("load_module /x/stream.so;\n") and "stream {" in stream
    assert "server 127.0.0.1:8002;" in stream
    backend = configs.nginx_backend_conf(tmp_path, [8001, 8002], tmp_path / "www")
    assert "location = /small" in backend and "listen 127.0.0.1:8002 backlog=4096;" in backend


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_fastlb_config_is_valid_for_fastlb(tmp_path: Path, mode: str) -> None:
    text = configs.fastlb_toml(mode, target(tmp_path, workers=3))  # type: ignore[arg-type]
    data = tomllib.loads(text)
    assert data["global"]["workers"] == 3 and data["listeners"][0]["mode"] == mode
    assert ("keepalive" in data["backends"]["web"]) == (mode == "http")
    parse_config(data)  # fastlb itself accepts it


def test_proxypy_and_pproxy_arguments(tmp_path: Path) -> None:
    t = target(tmp_path, workers=2)
    args = configs.proxypy_args(t)
    assert args[:2] == ["-m", "proxy"] and "--enable-reverse-proxy" in args
    assert "--threaded" in args and args[args.index("--num-acceptors") + 1] == "2"
    assert args[args.index("--plugins") + 1] == configs.PROXYPY_PLUGIN
    assert configs.proxypy_upstreams(t) == "127.0.0.1:8001,127.0.0.1:8002"
    pp = configs.pproxy_args(t)
    assert pp[pp.index("-l") + 1] == "tunnel{127.0.0.1:8001}://127.0.0.1:8000"
    assert pp.count("-r") == 2 and "tunnel://127.0.0.1:8002" in pp and "--reuse" in pp


def test_launch_writes_configs_and_copies(tmp_path: Path) -> None:
    t = target(tmp_path, workers=2)
    how = contenders.launch("haproxy", "http", t, TOOLS)
    assert how.cmds == [["/usr/sbin/haproxy", "-db", "-f", str(tmp_path / "haproxy-http.cfg")]]
    assert "http-reuse always" in (tmp_path / "haproxy-http.cfg").read_text()
    assert len(contenders.launch("pproxy", "tcp", t, TOOLS).cmds) == 2  # one per worker
    how = contenders.launch("proxy.py", "http", t, TOOLS)
    assert (tmp_path / "bench_proxypy_plugin.py").is_file()
    assert how.env and how.env["BENCH_UPSTREAMS"] == "127.0.0.1:8001,127.0.0.1:8002"
    how = contenders.launch("nginx", "tcp", t, TOOLS)
    assert "ngx_stream_module.so" in (tmp_path / "nginx-stream.conf").read_text()


# ---------------------------------------------------------------- missing contenders


def fake_probe(found: set[str], dists: set[str], fastlb: str | None = None) -> Probe:
    def fake_which(name: str, *fallbacks: str) -> str | None:
        return f"/usr/bin/{name}" if name in found else None

    def no_stream(nginx: str) -> str:
        raise contenders.StreamModuleMissing("no stream")

    return Probe(
        which=fake_which,
        has_dist=lambda dist, module: dist in dists,
        stream_module=no_stream,
        fastlb_problem=lambda: fastlb,
    )


def test_missing_contenders_name_their_package() -> None:
    probe = fake_probe({"wrk", "nginx"}, {"pproxy"}, fastlb="no engine")
    tools = contenders.find_tools(probe)
    assert tools.haproxy is None and tools.stream_module is None
    why = contenders.missing(list(contenders.NAMES), tools, probe)
    assert set(why) == {"fastlb", "haproxy", "proxy.py"}
    assert "apt-get install haproxy" in why["haproxy"]
    assert "pip install proxy.py" in why["proxy.py"]
    assert "build_ext --inplace" in why["fastlb"]
    assert "libnginx-mod-stream" in str(contenders.cannot("nginx", "tcp", tools))
    assert contenders.cannot("nginx", "http", tools) is None


def test_missing_nginx_and_pproxy() -> None:
    probe = fake_probe({"wrk", "haproxy"}, {"proxy.py"})
    tools = contenders.find_tools(probe)
    why = contenders.missing(["nginx", "pproxy", "haproxy", "direct"], tools, probe)
    assert set(why) == {"nginx", "pproxy"}
    assert "apt-get install nginx" in why["nginx"] and "pip install pproxy" in why["pproxy"]


def test_no_wrk_is_fatal_with_its_package() -> None:
    with pytest.raises(SystemExit, match="apt-get install wrk"):
        contenders.find_tools(fake_probe(set(), set()))
    assert contenders.find_tools(fake_probe(set(), set()), need_wrk=False).wrk == ""


def test_what_each_contender_cannot_do() -> None:
    assert "HTTP" in str(contenders.cannot("proxy.py", "tcp", TOOLS))
    assert "forward proxy" in str(contenders.cannot("pproxy", "http", TOOLS))
    assert runner.why_not("direct", SCENARIOS["idle"], TOOLS)
    assert runner.why_not("direct", SCENARIOS["l4-small"], TOOLS) is None
    assert runner.why_not("fastlb", SCENARIOS["l4-small"], TOOLS) is None


def test_plan_interleaves_and_skips() -> None:
    jobs = runner.plan(
        ["fastlb", "pproxy", "direct"], [SCENARIOS["l7-small"], SCENARIOS["l4-small"]], 2, TOOLS
    )
    got = [(r, s.name, n) for r, s, n in jobs]
    assert got == [
        (1, "l7-small", "fastlb"),
        (1, "l7-small", "direct"),
        (1, "l4-small", "fastlb"),
        (1, "l4-small", "pproxy"),
        (1, "l4-small", "direct"),
        (2, "l7-small", "fastlb"),
        (2, "l7-small", "direct"),
        (2, "l4-small", "fastlb"),
        (2, "l4-small", "pproxy"),
        (2, "l4-small", "direct"),
    ]


class QuietProgress:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.done = 0

    def start(self, description: str) -> None:
        pass

    def advance(self) -> None:
        self.done += 1

    def log(self, message: str) -> None:
        self.messages.append(message)


def test_run_jobs_reruns_a_short_latency_run_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = iter([{"short": True, "achieved_per_s": 50.0}, {"short": True, "achieved_per_s": 60}])
    monkeypatch.setattr(runner, "measure_contender", lambda *a: next(results))
    s = Settings("wrk", 1, 0, 50, 5000, 10, 0.1, rate=100)
    ctx = runner.Context(TOOLS, (8001, 8002), tmp_path, 1, 20_000, None, s, retries=1)
    progress = QuietProgress()
    entries = runner.run_jobs(ctx, [(1, SCENARIOS["latency"], "fastlb")], progress)
    assert len(entries) == 1 and progress.done == 1
    assert entries[0]["result"]["achieved_per_s"] == 60  # the rerun is kept, the first discarded
    assert entries[0]["discarded"][0]["result"]["achieved_per_s"] == 50.0
    assert "running it again" in progress.messages[0]


def test_run_jobs_records_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> dict[str, Any]:
        raise BenchError("haproxy exited with status 1")

    monkeypatch.setattr(runner, "measure_contender", fail)
    s = Settings("wrk", 1, 0, 50, 5000, 10, 0.1)
    ctx = runner.Context(TOOLS, (8001, 8002), tmp_path, 1, 20_000, None, s)
    entries = runner.run_jobs(ctx, [(1, SCENARIOS["l7-small"], "haproxy")], QuietProgress())
    assert entries[0]["error"] == "haproxy exited with status 1" and "result" not in entries[0]


def test_cap_cpus_option() -> None:
    args = cli.parse_args(["--cap-cpus", "0.25", "--workers", "2"])
    assert cli.make_settings(args, TOOLS).cap_cpus == 0.25
    assert cli.parse_args([]).cap_cpus == CAPPED_CPUS
    with pytest.raises(SystemExit, match="--cap-cpus"):
        cli.parse_args(["--cap-cpus", "0"])


def test_a_capped_run_asks_for_the_budget_times_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []

    def no_cgroup(name: str, cpus: float) -> cpucap.Cap:
        asked.append(cpus)
        raise OSError("read-only cgroupfs")

    monkeypatch.setattr(cpucap, "make", no_cgroup)
    s = Settings("wrk", 1, 0, 50, 5000, 10, 0.1, cap_cpus=0.25)
    ctx = runner.Context(TOOLS, (8001, 8002), tmp_path, 2, 20_000, None, s)
    entry = runner.run_once(ctx, (1, SCENARIOS["l7-capped"], "haproxy"), QuietProgress())
    assert asked == [0.5]
    assert entry["error"].startswith("no CPU cap for haproxy: read-only cgroupfs")


def test_no_cgroup_means_no_capped_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    why = "no cgroup cpu controller under /nowhere"
    monkeypatch.setattr(runner, "cap_unusable", lambda: why)
    assert runner.why_not("haproxy", SCENARIOS["l7-capped"], TOOLS) == why
    assert runner.why_not("haproxy", SCENARIOS["l7-small"], TOOLS) is None
    jobs = runner.plan(
        ["fastlb", "haproxy"], [SCENARIOS["l7-small"], SCENARIOS["l7-capped"]], 1, TOOLS
    )
    assert [(s.name, n) for _, s, n in jobs] == [("l7-small", "fastlb"), ("l7-small", "haproxy")]


# ---------------------------------------------------------------- options


def test_quick_and_full_presets() -> None:
    quick = cli.parse_args(["--quick"])
    assert (quick.rounds, quick.duration, quick.warmup, quick.idle_conns) == (1, 1.0, 0.0, 200)
    assert "c-micro" not in quick.scenario_names and "micro" in quick.scenario_names
    full = cli.parse_args(["--full", "--rounds", "7", "--contenders", "haproxy,fastlb"])
    assert (full.rounds, full.duration, full.warmup) == (7, 10.0, 2.0)
    assert full.names == ["fastlb", "haproxy"]  # canonical order
    assert "c-micro" in full.scenario_names
    with pytest.raises(SystemExit):
        cli.parse_args(["--contenders", "squid"])
    with pytest.raises(SystemExit):
        cli.parse_args(["--quick", "--full"])


def test_parse_cpus() -> None:
    assert procs.parse_cpus("0:1") == ({0}, {1})
    assert procs.parse_cpus("0-2,4") == ({0, 1, 2, 4}, {0, 1, 2, 4})
    assert procs.parse_cpus(None) == (None, None)
    with pytest.raises(ValueError):
        procs.parse_cpus("a:b")


# ---------------------------------------------------------------- charts and stand-in


def test_charts_are_written(tmp_path: Path) -> None:
    from bench.tool import charts

    runs = synthetic_runs()
    runs.append(entry("latency", "fastlb", 1, p50_us=100, p99_us=300, **{"p99.9_us": 900}))
    runs.append(entry("latency", "haproxy", 1, p50_us=120, p99_us=400, **{"p99.9_us": 800}))
    meds = report.medians(runs)
    names = ["fastlb", "haproxy", "nginx", "direct"]
    written = charts.write_charts(meds, ["l7-small", "latency", "idle"], names, tmp_path, 500)
    assert {p.name for p in written} == {"throughput.png", "latency.png", "cpu.png", "memory.png"}
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert charts.short(20690.0) == "20.7k" and charts.short(0.95) == "0.95"


def test_stand_in_backend_serves_both_bodies(tmp_path: Path) -> None:
    from bench.tool import backends

    ports = procs.free_ports(2)
    cmds = backends.backend_commands(tmp_path, None, ports, 1024, 1)
    assert cmds[0][:2] == [sys.executable, str(backends.STAND_IN)]
    proc = procs.start_process("backend", cmds, tmp_path)
    try:
        for port in ports:
            procs.wait_listening(proc, port, timeout=10)
            procs.check_serves(port, "the stand-in")
        assert procs.http_get(ports[0], "/nothing")[0] == 404
    finally:
        procs.stop_process(proc)
    assert proc.exited() is not None


def test_python_m_bench_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0 and "--quick" in done.stdout and "--workers" in done.stdout


def test_idle_connections_give_up_past_their_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.tool import scenarios

    assert scenarios.idle_budget(5000) == 25.0 and scenarios.idle_budget(10) == 10.0
    monkeypatch.setattr(scenarios, "idle_budget", lambda count: -1.0)
    with pytest.raises(BenchError, match="opened only 0 of 3 idle connections"):
        scenarios.open_idle(procs.free_port(), 3)
