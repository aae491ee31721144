"""Talos API figures on a lab node: how much the client's waiting adds to a node's reboot.

    .venv/bin/python -m bench.bench_talos_api              # reboot delays of 1 s and 3 s, 5 runs each
    .venv/bin/python -m bench.bench_talos_api --runs 10 --delays 0.5 2 5

Per run: a lab node in maintenance mode gets a control-plane config; the clock starts when ApplyConfiguration
returns and stops when `wait_for_configured` returns (the node answered with mTLS). The node is down for
exactly its simulated install + shutdown + boot; the printed ratio is measured / simulated, goal <= 1.05.
Also printed: the cost of one Version call over mTLS on a fresh connection, and on a warm one.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common.waiting import Deadline
from lab.images.raw import TalosImage
from lab.net import claim_network
from lab.talos.node import NodeTimings, TalosNode
from lab.talos.storage import MemoryStorage
from lab.talos.testing import ClusterMaterial
from talos.api.client import TalosClient
from talos.api.waiting import wait_for_configured


def reboot_ratio(address: str, cluster: ClusterMaterial, delay: float) -> tuple[float, float, float]:
    """(measured, simulated, client lag) seconds from a config applied in maintenance to mTLS answering.

    The client lag is the part after the node's port opened again: what polling added.
    """
    timings = NodeTimings(boot=delay * 0.8, shutdown=delay * 0.05, install=delay * 0.15, services=0.01, etcd=0.01)
    node = TalosNode(address, MemoryStorage(TalosImage("v1.13.9")), timings=timings)
    try:
        node.power_on()
        node.wait_for(lambda n: n.stage.value == "maintenance", timeout=delay * 3 + 5)
        with TalosClient(address) as client:
            client.apply_configuration(cluster.controlplane)
        applied = time.monotonic()
        wait_for_configured(address, cluster.admin, Deadline.after(delay * 5 + 10))
        answered = time.monotonic()
        return answered - applied, timings.apply_to_configured, answered - node.listener.opened_at
    finally:
        node.close()


def call_cost(address: str, cluster: ClusterMaterial, calls: int = 50) -> tuple[float, float]:
    """(seconds per Version on a new connection, seconds per Version on an open one)."""
    node = TalosNode(address, MemoryStorage(TalosImage("v1.13.9"), state=cluster.controlplane.encode()))
    try:
        node.power_on()
        node.wait_for(lambda n: n.stage.value == "running", timeout=10)
        started = time.monotonic()
        for _ in range(calls):
            with TalosClient(address, cluster.admin) as client:
                client.version()
        cold = (time.monotonic() - started) / calls
        with TalosClient(address, cluster.admin) as client:
            client.version()
            started = time.monotonic()
            for _ in range(calls):
                client.version()
            warm = (time.monotonic() - started) / calls
        return cold, warm
    finally:
        node.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delays", type=float, nargs="+", default=[1.0, 3.0], help="simulated reboot seconds")
    options = parser.parse_args()
    network, marker = claim_network()
    with marker:
        address = f"127.{network.net}.3.10"
        cluster = ClusterMaterial.generate(address)
        cold, warm = call_cost(address, cluster)
        print(f"Version over mTLS: {cold * 1000:6.1f} ms on a new connection, {warm * 1000:5.2f} ms on an open one")
        for delay in options.delays:
            ratios, lags = [], []
            for run in range(options.runs):
                measured, simulated, lag = reboot_ratio(address, cluster, delay)
                ratios.append(measured / simulated)
                lags.append(lag / simulated)
                print(
                    f"reboot {simulated:4.2f} s  run {run + 1}: applied -> mTLS {measured:6.3f} s"
                    f"  ratio {ratios[-1]:.3f}  (client polling {lag * 1000:5.1f} ms = {lags[-1]:.1%})"
                )
            verdict = "ok" if statistics.mean(ratios) <= 1.05 else "ABOVE GOAL"
            print(
                f"reboot {delay:4.2f} s: ratio mean {statistics.mean(ratios):.3f}  max {max(ratios):.3f}"
                f"  polling mean {statistics.mean(lags):.1%}  max {max(lags):.1%}  (goal: ratio <= 1.05, {verdict})"
            )


if __name__ == "__main__":
    main()
