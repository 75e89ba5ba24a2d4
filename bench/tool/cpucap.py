"""A CPU budget for a contender: a cgroup with a CFS bandwidth quota.

On a small machine wrk, the backend and the proxy share the CPUs, and a
proxy that needs less CPU per request leaves the difference idle instead of
serving more requests.  Holding every proxy to the same fraction of a CPU
makes the proxy the bottleneck, so its requests/s measure what it can do
with that CPU.  The contender's first process joins the cgroup before it
execs (preexec), so its threads and every child it forks are inside.

cgroup v2 (a `cpu.max` file) is used where the cpu controller is there,
else cgroup v1's cpu hierarchy (`cpu.cfs_quota_us`).  Both need root."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 10_000  # a short period: a throttled proxy stalls for at most ~5 ms


@dataclass(frozen=True)
class Hierarchy:
    """Where cgroups with a CPU quota can be made."""

    path: Path  # the directory new cgroups go in
    v2: bool


@dataclass(frozen=True)
class Cap:
    """A cgroup made for one contender run."""

    path: Path

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"


def find(root: Path = CGROUP_ROOT) -> Hierarchy | str:
    """The hierarchy to use under root, or why there is none."""
    controllers = root / "cgroup.controllers"
    if controllers.exists():
        if "cpu" not in controllers.read_text().split():
            return f"the cgroup v2 tree at {root} has no cpu controller"
        return Hierarchy(root, v2=True)
    for name in ("cpu", "cpu,cpuacct"):
        if (root / name / "cpu.cfs_quota_us").exists():
            return Hierarchy(root / name, v2=False)
    return f"no cgroup cpu controller under {root} (cgroup v2 cpu.max or v1 cpu.cfs_quota_us)"


def quota_us(cpus: float) -> int:
    """CPU time allowed per period for cpus CPUs (1 ms at least, as the kernel wants)."""
    if cpus <= 0:
        raise ValueError(f"a CPU budget must be positive, not {cpus}")
    return max(1000, round(cpus * PERIOD_US))


def create(h: Hierarchy, name: str, cpus: float) -> Cap:
    """A new cgroup name under h limited to cpus CPUs.  OSError when it
    cannot be made (not root, read-only cgroupfs)."""
    path = h.path / name
    quota = quota_us(cpus)
    if h.v2:
        subtree = h.path / "cgroup.subtree_control"
        if "cpu" not in subtree.read_text().split():
            subtree.write_text("+cpu")
    path.mkdir()
    try:
        if h.v2:
            (path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (path / "cpu.cfs_quota_us").write_text(str(quota))
    except OSError:
        path.rmdir()
        raise
    return Cap(path)


def remove(cap: Cap) -> None:
    """Remove the cgroup; any process still in it goes back to the parent first."""
    parent = cap.path.parent / "cgroup.procs"
    with contextlib.suppress(OSError):
        for pid in cap.procs_file.read_text().split():
            with contextlib.suppress(OSError):
                parent.write_text(pid)
    with contextlib.suppress(OSError):
        cap.path.rmdir()


def usable(root: Path = CGROUP_ROOT) -> str | None:
    """Why a capped run cannot be made here (None: it can): tries a cgroup."""
    h = find(root)
    if isinstance(h, str):
        return h
    try:
        cap = create(h, f"fastlb-bench-probe-{os.getpid()}", 0.5)
    except OSError as exc:
        why = exc.strerror or exc
        return f"cannot make a cgroup in {h.path}: {why} (the tool must run as root)"
    remove(cap)
    return None


def make(name: str, cpus: float, root: Path = CGROUP_ROOT) -> Cap:
    """A new cgroup for contender name limited to cpus CPUs, in whichever
    hierarchy find() gives.  OSError when there is none or it cannot be made."""
    h = find(root)
    if isinstance(h, str):
        raise OSError(h)
    return create(h, f"fastlb-bench-{name}-{os.getpid()}", cpus)


@contextlib.contextmanager
def capped(name: str, cpus: float, root: Path = CGROUP_ROOT) -> Iterator[Cap]:
    """A cgroup limited to cpus CPUs for the duration of the block."""
    cap = make(name, cpus, root)
    try:
        yield cap
    finally:
        remove(cap)


def join(procs_file: Path) -> None:
    """Move the calling process into the cgroup of procs_file (a preexec step)."""
    with open(procs_file, "w") as f:
        f.write(str(os.getpid()))
