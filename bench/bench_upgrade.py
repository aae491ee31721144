"""Rolling Talos upgrade of the lab cluster (3+2): `pulumi up` wall time against the sum of its unavoidable reboots.

    .venv/bin/python -m bench.bench_upgrade              # delays x0.1 (needs root: the lab's rescue systems)
    .venv/bin/python -m bench.bench_upgrade --scale 0.05

A lab of its own with realistic delays times --scale; the project's lab stack is brought up (not timed), then
`talosVersion` changes to the next patch release and `pulumi up` rolls it node by node (timed). Unavoidable per
node, because the nodes go one at a time behind health gates: the installer writing the disk, the machine's
orderly shutdown, POST and disk boot, Talos starting its services and, on a control plane, etcd rejoining until
healthy. Everything else (engine, API calls, health polling, config updates) is overhead. Goal: ratio <= 1.15.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lab.delays import Delays
from lab.services import Lab, LabSpec
from lab.talos.node import NodeTimings
from tests.e2e.conftest import edit_stack, lab_stack

TARGET = "v1.13.10"


def unavoidable(delays: Delays, nodes: list[dict]) -> float:
    """Seconds of the nodes' upgrade reboots until healthy, one node after the other."""
    talos = NodeTimings.in_datacenter(delays.scale)
    total = 0.0
    for node in nodes:
        machine = delays.timings("robot" if "robot" in node else "cloud")
        etcd = talos.etcd if node["role"] == "controlplane" else 0.0
        total += talos.install + machine.shutdown + machine.post + machine.os_boot + talos.services + etcd
    return total


def bench(scale: float) -> None:
    delays = Delays.realistic().scaled(scale)
    with Lab(LabSpec(delays=delays)) as lab, tempfile.TemporaryDirectory(prefix="bench-upgrade-") as scratch:
        home = Path(scratch, "home")
        home.mkdir()
        project = lab_stack(lab, Path(scratch, "project"), home)
        project.pulumi("up", "--yes", "--skip-preview")
        nodes: list[dict] = []
        edit_stack(project, lambda values: (nodes.extend(values["nodes"]), values.update(talosVersion=TARGET)))
        started = time.monotonic()
        project.pulumi("up", "--yes", "--skip-preview")
        wall = time.monotonic() - started
        floor = unavoidable(delays, nodes)
        print(f"rolling upgrade of {len(nodes)} nodes to {TARGET}: {wall:.2f} s (delays x{scale:g})")
        print(f"sum of unavoidable reboots: {floor:.2f} s")
        print(f"ratio: {wall / floor:.3f} (goal <= 1.15)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1, help="factor on realistic delays (default 0.1)")
    bench(parser.parse_args().scale)


if __name__ == "__main__":
    main()
