"""fastlb.metrics: the Prometheus exposition read from Engine.stats() at
scrape time, parsed back with prometheus_client's parser; values move
after traffic and admin changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from control_helpers import AdminClient, Backend, get, make_config, wait_for
from prometheus_client.parser import text_string_to_metric_families

from fastlb.admin import AdminServer
from fastlb.control import Controller
from fastlb.metrics import Metrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(text: str) -> tuple[Samples, dict[str, tuple[str, str]]]:
    """(sample (name, sorted labels) -> value, family name -> (type, help))."""
    samples: Samples = {}
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = (family.type, family.documentation)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, families


def _settled(metrics: Metrics, web: tuple[tuple[str, str], ...], n: int) -> bool:
    samples, _ = _scrape(metrics.render().decode())
    return (
        samples[("fastlb_listener_requests_total", web)] == n
        and samples[("fastlb_listener_responses_total", (("code_class", "2xx"), *web))] == n
        and samples[("fastlb_worker_requests_total", (("worker", "0"),))] == n
        and samples[("fastlb_listener_connections_active", web)] == 0
    )


@pytest.fixture
def setup() -> Iterator[tuple[Controller, Metrics, list[Backend], str]]:
    backends = [Backend("a"), Backend("b")]
    ctl = Controller(make_config([b.address for b in backends]))
    ctl.start()
    host, port = ctl.addresses()["web"]
    yield ctl, Metrics(ctl), backends, f"http://{host}:{port}"
    ctl.stop()
    for backend in backends:
        backend.close()


def test_families_have_help_and_types(
    setup: tuple[Controller, Metrics, list[Backend], str],
) -> None:
    _, metrics, _, _ = setup
    _, families = _scrape(metrics.render().decode())
    expected = {
        "fastlb_listener_requests": "counter",
        "fastlb_listener_responses": "counter",
        "fastlb_listener_connections": "counter",
        "fastlb_listener_connections_active": "gauge",
        "fastlb_listener_bytes_in": "counter",
        "fastlb_listener_bytes_out": "counter",
        "fastlb_listener_connect_failures": "counter",
        "fastlb_server_requests": "counter",
        "fastlb_server_connections": "counter",
        "fastlb_server_active": "gauge",
        "fastlb_server_up": "gauge",
        "fastlb_server_weight": "gauge",
        "fastlb_server_connect_time_seconds": "counter",
        "fastlb_server_state": "gauge",
        "fastlb_worker_connections": "counter",
        "fastlb_engine_workers": "gauge",
        "fastlb_config_reloads": "counter",
        "process_cpu_seconds": "counter",
    }
    for name, kind in expected.items():
        assert name in families, name
        assert families[name][0] == kind, name
    fastlb = {n: help_ for n, (_, help_) in families.items() if n.startswith("fastlb_")}
    assert all(len(text) > 10 for text in fastlb.values()), fastlb


def test_values_move_with_traffic(setup: tuple[Controller, Metrics, list[Backend], str]) -> None:
    _, metrics, backends, url = setup
    a, b = (x.address for x in backends)
    before, _ = _scrape(metrics.render().decode())
    assert before[("fastlb_listener_requests_total", (("listener", "web"),))] == 0
    for _ in range(4):
        assert get(url + "/")[0] == 200
    get(url + "/")  # a fifth
    web = (("listener", "web"),)
    # A worker counts a request as it ends, which may come just after the
    # client has read the response.
    assert wait_for(lambda: _settled(metrics, web, 5))
    after, _ = _scrape(metrics.render().decode())
    assert after[("fastlb_listener_requests_total", web)] == 5
    assert after[("fastlb_listener_responses_total", (("code_class", "2xx"), *web))] == 5
    assert after[("fastlb_listener_responses_total", (("code_class", "5xx"), *web))] == 0
    assert after[("fastlb_listener_connections_total", web)] == 5
    assert after[("fastlb_listener_bytes_in_total", web)] > 0
    assert after[("fastlb_listener_bytes_out_total", web)] > 0
    per_server = [
        after[("fastlb_server_requests_total", (("backend", "web"), ("server", s)))] for s in (a, b)
    ]
    assert sorted(per_server) == [2, 3]
    server_a = (("backend", "web"), ("server", a))
    assert 0 < after[("fastlb_server_connect_time_seconds_total", server_a)] < 1
    assert after[("fastlb_worker_requests_total", (("worker", "0"),))] == 5
    assert after[("fastlb_engine_workers", ())] == 1
    assert after[("fastlb_engine_ready", ())] == 1


def test_state_and_health(setup: tuple[Controller, Metrics, list[Backend], str]) -> None:
    ctl, metrics, backends, _ = setup
    a, b = (x.address for x in backends)
    ctl.patch_server("web", a, state="maint", weight=4)
    ctl.set_health("web", b, False, "timeout")
    samples, _ = _scrape(metrics.render().decode())

    def value(name: str, server: str, **labels: str) -> float:
        key = tuple(sorted({"backend": "web", "server": server, **labels}.items()))
        return samples[(name, key)]

    assert value("fastlb_server_up", a) == 0
    assert value("fastlb_server_up", b) == 0
    assert value("fastlb_server_weight", a) == 4
    assert value("fastlb_server_state", a, state="maint") == 1
    assert value("fastlb_server_state", a, state="up") == 0
    assert value("fastlb_server_state", b, state="down") == 1
    assert value("fastlb_server_health_check_up", b) == 0
    assert ("fastlb_server_health_check_up", (("backend", "web"), ("server", a))) not in samples
    ctl.set_health("web", b, True)
    samples, _ = _scrape(metrics.render().decode())
    assert value("fastlb_server_up", b) == 1
    assert value("fastlb_server_health_check_up", b) == 1


def test_metrics_over_http(setup: tuple[Controller, Metrics, list[Backend], str]) -> None:
    ctl, _, _, url = setup
    server = AdminServer(ctl)
    server.start()
    try:
        get(url + "/")

        def scraped() -> bool:
            status, text = AdminClient(server.url).get("/metrics", token=None)
            assert status == 200
            samples, _ = _scrape(text)
            return samples[("fastlb_listener_requests_total", (("listener", "web"),))] == 1

        assert wait_for(scraped)
    finally:
        server.stop()


def test_before_start_renders_empty_families() -> None:
    ctl = Controller(make_config(["127.0.0.1:7001"]))
    samples, _ = _scrape(Metrics(ctl, process=False).render().decode())
    assert samples[("fastlb_engine_ready", ())] == 0
    assert samples[("fastlb_engine_workers", ())] == 0


def test_standard_families_add_up(setup: tuple[Controller, Metrics, list[Backend], str]) -> None:
    """fastlb_requests_total (per server, plus fastlb's own answers per
    listener) adds up to every response; the C histograms count each one."""
    _, metrics, _, url = setup
    web = (("listener", "web"),)
    for _ in range(4):
        assert get(url + "/")[0] == 200
    assert wait_for(lambda: _settled(metrics, web, 4))
    samples, families = _scrape(metrics.render().decode())
    assert families["fastlb_requests"][0] == "counter"
    assert families["fastlb_request_duration_seconds"][0] == "histogram"
    assert families["fastlb_upstream_response_seconds"][0] == "histogram"
    requests = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "fastlb_requests_total"
    }
    assert sum(requests.values()) == 4
    ok = [v for labels, v in requests.items() if ("code", "2xx") in labels]
    assert sum(ok) == 4
    assert samples[("fastlb_request_duration_seconds_count", web)] == 4
    assert samples[("fastlb_request_duration_seconds_bucket", (("le", "+Inf"), *web))] == 4
    upstream = [
        v for (name, _), v in samples.items() if name == "fastlb_upstream_response_seconds_count"
    ]
    assert sum(upstream) == 4
    for name in (
        "fastlb_connections_total",
        "fastlb_bytes_received_total",
        "fastlb_bytes_sent_total",
    ):
        assert samples[(name, web)] > 0, name
    assert ("fastlb_connections_active", web) in samples
    assert any(name == "fastlb_retries_total" for name, _ in samples)
    assert any(name == "fastlb_upstream_connect_failures_total" for name, _ in samples)


def test_health_checks_total_by_result(
    setup: tuple[Controller, Metrics, list[Backend], str],
) -> None:
    ctl, metrics, backends, _ = setup
    a = backends[0].address
    samples, families = _scrape(metrics.render().decode())
    assert families["fastlb_health_checks"][0] == "counter"
    assert not [k for k in samples if k[0] == "fastlb_health_checks_total"]  # no checker yet
    ctl.check_status = lambda: {("web", a): {"checks": 7, "passed": 5}}
    samples, _ = _scrape(metrics.render().decode())
    key = (("backend", "web"), ("result", "ok"), ("server", a))
    assert samples[("fastlb_health_checks_total", key)] == 5
    key = (("backend", "web"), ("result", "fail"), ("server", a))
    assert samples[("fastlb_health_checks_total", key)] == 2
