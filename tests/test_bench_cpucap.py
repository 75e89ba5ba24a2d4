"""The CPU budget of the benchmark's capped scenario (bench/tool/cpucap.py):
which cgroup tree it finds, what it writes there, and, on this machine's
real cgroups (CI runs as root), that a busy process inside a cap gets no
more CPU than the cap allows."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from bench.tool import cpucap, procs, report
from bench.tool.scenarios import BY_NAME as SCENARIOS
from bench.tool.scenarios import CAPPED_CPUS, direct_cannot

CAPPED = SCENARIOS["l7-capped"]


def fake_v2(root: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("memory\n")
    return root


def fake_v1(root: Path, name: str = "cpu") -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "cpu.cfs_quota_us").write_text("-1\n")
    return root


def test_quota_is_the_cpu_share_of_the_period() -> None:
    assert cpucap.quota_us(0.5) == cpucap.PERIOD_US // 2
    assert cpucap.quota_us(2) == 2 * cpucap.PERIOD_US
    assert cpucap.quota_us(0.01) == 1000  # the kernel's minimum
    with pytest.raises(ValueError, match="positive"):
        cpucap.quota_us(0)


def test_find_prefers_cgroup_v2_with_a_cpu_controller(tmp_path: Path) -> None:
    found = cpucap.find(fake_v1(fake_v2(tmp_path)))
    assert found == cpucap.Hierarchy(tmp_path, v2=True)


def test_find_says_when_v2_has_no_cpu_controller(tmp_path: Path) -> None:
    found = cpucap.find(fake_v2(tmp_path, controllers="memory pids"))
    assert isinstance(found, str) and "no cpu controller" in found


@pytest.mark.parametrize("name", ["cpu", "cpu,cpuacct"])
def test_find_falls_back_to_v1(tmp_path: Path, name: str) -> None:
    assert cpucap.find(fake_v1(tmp_path, name)) == cpucap.Hierarchy(tmp_path / name, v2=False)


def test_find_without_a_controller_says_what_it_looked_for(tmp_path: Path) -> None:
    found = cpucap.find(tmp_path)
    assert isinstance(found, str) and "cpu.max" in found and "cfs_quota_us" in found
    assert cpucap.usable(tmp_path) == found


def test_create_v2_enables_cpu_and_writes_cpu_max(tmp_path: Path) -> None:
    cap = cpucap.create(cpucap.Hierarchy(fake_v2(tmp_path), v2=True), "t", 0.5)
    assert cap.path == tmp_path / "t" and cap.procs_file == tmp_path / "t" / "cgroup.procs"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu"
    assert (tmp_path / "t" / "cpu.max").read_text() == f"{cpucap.PERIOD_US // 2} {cpucap.PERIOD_US}"


def test_create_v1_writes_period_then_quota(tmp_path: Path) -> None:
    h = cpucap.find(fake_v1(tmp_path))
    assert isinstance(h, cpucap.Hierarchy)
    cap = cpucap.create(h, "t", 1.5)
    assert (cap.path / "cpu.cfs_period_us").read_text() == str(cpucap.PERIOD_US)
    assert (cap.path / "cpu.cfs_quota_us").read_text() == str(3 * cpucap.PERIOD_US // 2)


def test_the_capped_scenario_has_no_direct_run_and_says_why() -> None:
    assert CAPPED.capped and CAPPED.mode == "http" and CAPPED.kind == "wrk"
    assert direct_cannot(CAPPED) is not None
    assert direct_cannot(SCENARIOS["l7-small"]) is None
    note = report.scenario_note("l7-capped", {})
    assert "cgroup" in note and f"{CAPPED_CPUS:g} CPU per worker" in note
    assert "0.25 CPU per worker" in report.scenario_note("l7-capped", {"cap_cpus": 0.25})


def test_this_machine_can_cap() -> None:
    """CI runs as root on a machine like this one: the capped scenario
    must not be silently left out there."""
    assert cpucap.usable() is None


def test_a_busy_process_gets_no_more_than_its_cap(tmp_path: Path) -> None:
    busy = (
        "import time\n"
        "end = time.monotonic() + 1.5\n"
        "while time.monotonic() < end: pass\n"
        "print(time.process_time())\n"
    )
    with cpucap.capped("test", 0.2) as cap:
        cmd = [sys.executable, "-c", busy]
        proc = procs.start_process("busy", [cmd], tmp_path, cgroup=cap.procs_file)
        try:
            time.sleep(0.2)
            assert str(proc.pids[0]) in cap.procs_file.read_text().split()
            assert proc.popens[0].wait(timeout=10) == 0
        finally:
            procs.stop_process(proc)
    assert not cap.path.exists()
    used = float((tmp_path / "busy.out").read_text())
    # 1.5 s of wall time at 0.2 CPU is 0.3 s of CPU; uncapped it would be 1.5 s.
    assert 0.1 < used < 0.6, used
