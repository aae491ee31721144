"""Benchmark: a new secrets bundle plus 50 validated node configs, as a 50-node stack's preview renders them.

Goal (issue 2): under 2 s on the project's 2-core machine. Run: .venv/bin/python -m bench.bench_generate
"""

from __future__ import annotations

import statistics
import time

from talos.config import ClusterOptions, generate_config
from talos.patches import load_patches
from talos.secrets import SecretsBundle
from talos.talosconfig import build_talosconfig

NODES = 50
RUNS = 5
CLUSTER_PATCH = """\
cluster:
  allowSchedulingOnControlPlanes: true
  network: {cni: {name: none}}
  proxy: {disabled: true}
"""


def node_patch(index: int) -> str:
    return (
        f'apiVersion: v1alpha1\nkind: HostnameConfig\nauto: "off"\nhostname: node-{index}\n---\n'
        "machine:\n  network:\n    interfaces:\n      - interface: eth0\n"
        f"        addresses: [203.0.113.{index}/32]\n"
        "        routes:\n          - network: 203.0.113.1/32\n          - network: 0.0.0.0/0\n"
        "            gateway: 203.0.113.1\n"
    )


def one_run() -> float:
    started = time.perf_counter()
    options = ClusterOptions(cluster_name="bench", endpoint="https://api.bench.example:6443")
    bundle = SecretsBundle.generate(options.contract)
    cluster = load_patches([CLUSTER_PATCH])
    for index in range(1, NODES + 1):
        role = "controlplane" if index <= 3 else "worker"
        generate_config(options, bundle, role, [*cluster, *load_patches([node_patch(index)])])
    build_talosconfig("bench", bundle, endpoints=["203.0.113.1"], nodes=["203.0.113.1"])
    return time.perf_counter() - started


def main() -> None:
    times = [one_run() for _ in range(RUNS)]
    print(f"secrets bundle + {NODES} validated node configs + talosconfig, {RUNS} runs:")
    print(f"  first (incl. schema load) {times[0]:.3f}s, median {statistics.median(times):.3f}s, max {max(times):.3f}s")
    print(f"  goal < 2 s: {'met' if max(times) < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
