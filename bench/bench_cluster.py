"""Cluster figures: `pulumi up` of the lab cluster (3+2) against one node, and a 50-node preview's provider time.

    .venv/bin/python -m bench.bench_cluster                 # both (needs root: the lab's rescue systems)
    .venv/bin/python -m bench.bench_cluster --only preview  # the provider-time part alone (no lab, no root)

up: a lab of its own with the delays of `python -m lab` (real-world durations x --scale); the project's lab stack
as it is (five nodes), then the same stack cut down to cp-1, each from bare servers in a fresh backend, wall time of
`pulumi up` (goal: ratio <= 1.3). preview: the provider side of `pulumi preview` of a 50-node stack with nothing to
change, i.e. Check and Diff of every dynamic resource (per node: RescueInstall, TalosMachineConfig, one or two
DnsRecords, TalosUpgrade, ClusterMember; once: ClusterSecrets, ClusterBootstrap, KubernetesUpgrade, ClusterRoster)
through the SDK's provider server, with every API the providers know (Robot, Cloud, each node's Talos API) pointed
at listeners that count connections (goal: under 1 s, no connection).
"""

from __future__ import annotations

import argparse
import base64
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from lab.delays import Delays
from lab.services import Lab, LabSpec
from providers.cluster_bootstrap import ClusterBootstrapProvider
from providers.cluster_member import ClusterMemberProvider
from providers.cluster_roster import ClusterRosterProvider
from providers.cluster_secrets import ClusterSecretsProvider
from providers.dns_record import DnsRecordProvider
from providers.kubernetes_upgrade import KubernetesUpgradeProvider
from providers.rescue_install import RescueInstallProvider
from providers.talos_machine_config import Applied, TalosMachineConfigProvider, outputs, render
from providers.talos_upgrade import TalosUpgradeProvider
from talos.secrets import SecretsBundle
from tests.e2e.conftest import RESCUE_KEY, edit_stack, lab_stack
from tests.providers.harness import ProviderServer, ResourceDriver, provider_server

NODES = 50


def bench_up(scale: float) -> None:
    """Wall time of `pulumi up`: the five-node lab stack, then the stack with cp-1 alone."""
    spec = LabSpec(delays=Delays.realistic().scaled(scale))
    with Lab(spec) as lab, tempfile.TemporaryDirectory(prefix="bench-cluster-") as scratch:
        home = Path(scratch, "home")
        home.mkdir()
        times = {}
        for label, keep in (("3+2 nodes", None), ("1 node", "cp-1")):
            project = lab_stack(lab, Path(scratch, label.replace(" ", "-")), home)
            if keep:
                edit_stack(project, lambda values, keep=keep: values.update(nodes=_only(values["nodes"], keep)))
            started = time.monotonic()
            project.pulumi("up", "--yes", "--skip-preview")
            times[label] = time.monotonic() - started
            print(f"up {label:10} {times[label]:7.2f} s", flush=True)
            lab.reset()
        print(f"ratio 3+2 / 1: {times['3+2 nodes'] / times['1 node']:.2f} (goal <= 1.3; delays x{scale:g})")


def _only(nodes: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [node for node in nodes if node["name"] == name]


class Counter:
    """Listeners on loopback addresses that accept and count connections (nothing should connect)."""

    def __init__(self, addresses: list[tuple[str, int]]) -> None:
        self.accepted = 0
        self._sockets = [socket.create_server(address) for address in addresses]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        for sock in self._sockets:
            sock.settimeout(0.01)
        while not self._stop.is_set():
            for sock in self._sockets:
                try:
                    conn, _ = sock.accept()
                except TimeoutError:
                    continue
                self.accepted += 1
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self._sockets:
            sock.close()


def bench_preview() -> None:
    """Provider time of Check + Diff for a 50-node stack that has nothing to change."""
    bundle = SecretsBundle.generate()
    talos = [(f"127.77.{n // 200}.{n % 200 + 10}", 50000) for n in range(NODES)]
    apis = [("127.77.9.1", 8001), ("127.77.9.2", 8002)]
    counter = Counter([*talos, *apis])
    config = {
        "talos-hetzner:robotUser": "#ws+bench",
        "talos-hetzner:robotPassword": "bench",
        "talos-hetzner:robotUrl": "http://127.77.9.1:8001",
        "talos-hetzner:rescueSshKey": RESCUE_KEY,
        "hcloud:token": "t" * 64,
        "hcloud:endpoint": "http://127.77.9.2:8002/v1",
    }
    secrets = ("talos-hetzner:robotPassword", "talos-hetzner:rescueSshKey", "hcloud:token")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            log = Path(scratch, "provider.log")
            with provider_server(log, config, secrets=secrets) as server:
                resources = _deployed(server, bundle, talos)
            for run in range(3):  # each preview starts a fresh provider process, as the engine does
                with provider_server(log, config, secrets=secrets) as server:
                    started = time.monotonic()
                    for driver, inputs in resources:
                        driver.server = server
                        _, diff = driver.preview(inputs)
                        assert diff is not None and diff.changes == "none", (driver.urn, diff)
                    elapsed = time.monotonic() - started
                print(
                    f"preview of {NODES} nodes ({len(resources)} resources), run {run + 1}: {elapsed:.2f} s in"
                    " providers"
                )
    finally:
        counter.close()
    print(f"connections to Robot, Cloud and the nodes' Talos APIs: {counter.accepted} (goal: 0)")


def _deployed(server: ProviderServer, bundle: SecretsBundle, talos: list[tuple[str, int]]) -> list[Any]:
    """Each resource with the state a finished `pulumi up` leaves (outputs made offline), and its inputs."""
    secrets_yaml = bundle.to_yaml()
    kubeconfig = _kubeconfig(bundle)
    cluster = {"clusterName": "bench", "endpoint": "https://api.bench.example:6443", "talosVersion": "v1.13.9"}
    resources: list[tuple[ResourceDriver, dict[str, Any]]] = []
    members = []
    for number, (address, port) in enumerate(talos):
        name, role = f"node-{number}", "controlplane" if number < 3 else "worker"
        members.append({"name": name, "address": address, "role": role})
        install = {
            "node": name,
            "server": {"kind": "robot", "id": 3000000 + number},
            "address": address,
            "sshPort": 22,
            "talosPort": port,
            "image": {"version": "v1.13.9"},
            "disk": {"serial": f"S{number:06d}"},
            "wipe": "refuse",
        }
        resources.append(_settled(server, RescueInstallProvider(), f"{name}-install", "hetzner:RescueInstall", install))
        hostname = f'apiVersion: v1alpha1\nkind: HostnameConfig\nauto: "off"\nhostname: {name}\n'
        config = {
            "node": name,
            "role": role,
            "address": address,
            "talosPort": port,
            "cluster": cluster,
            "secretsYaml": secrets_yaml,
            "patches": [{"source": f"node {name} hostname", "patch": hostname}],
            "installDisk": f"/dev/disk/by-id/nvme-eui.{number:016x}",
            "machine": {"id": f"robot-{3000000 + number}", "reinstall": ""},
            "applyMode": "auto",
            "timeout": 1800,
        }
        resources.append(_settled_config(server, name, config))
        for record in ("api", name) if role == "controlplane" else (name,):
            dns = {"zone": "bench.example", "name": record, "type": "A", "values": [address], "ttl": 60}
            dns["owner"] = f"pulumi bench/{name}-{record}"
            resources.append(_settled(server, DnsRecordProvider(), f"{name}-{record}", "hetzner:DnsRecord", dns))
    control_planes = [member["address"] for member in members if member["role"] == "controlplane"]
    for member in members:
        name = member["name"]
        upgrade = {"node": name, "address": member["address"], "secretsYaml": secrets_yaml, "cni": "none"}
        upgrade.update(talosVersion="v1.13.9", controlPlanes=control_planes)
        ran = {"version": "v1.13.9", "outcome": "already on target"}
        upgraded = _settled(server, TalosUpgradeProvider(), f"{name}-upgrade", "talos:TalosUpgrade", upgrade, ran)
        resources.append(upgraded)
        joined = {**member, "secretsYaml": secrets_yaml, "kubeconfig": kubeconfig, "controlPlanes": control_planes}
        resources.append(_settled(server, ClusterMemberProvider(), f"{name}-member", "talos:ClusterMember", joined))
    roster = {"secretsYaml": secrets_yaml, "kubeconfig": kubeconfig}
    roster["members"] = [{"node": m["name"], "address": m["address"], "role": m["role"]} for m in members]
    roster["policy"] = {"drain": True, "reset": "config", "reboot": True}
    resources.append(_settled(server, ClusterRosterProvider(), "bench-roster", "talos:ClusterRoster", roster))
    kubernetes = {"clusterName": "bench", "nodes": members, "secretsYaml": secrets_yaml, "kubeconfig": kubeconfig}
    kubernetes.update(kubernetesVersion="1.36.3", cni="none")
    rolled = {"version": "v1.36.3", "outcome": "already on target"}
    resources.append(
        _settled(server, KubernetesUpgradeProvider(), "bench-kubernetes", "talos:KubernetesUpgrade", kubernetes, rolled)
    )
    bootstrap = {"clusterName": "bench", "secretsYaml": secrets_yaml, "nodes": members, "cni": "none", "trigger": "1"}
    done = {"outcome": "bootstrapped", "talosconfig": "(kept)", "kubeconfig": "(kept)"}
    resources.append(
        _settled(server, ClusterBootstrapProvider(), "bench-bootstrap", "talos:ClusterBootstrap", bootstrap, done)
    )
    secrets = {"talosVersion": "v1.13.9"}
    resources.append(_settled(server, ClusterSecretsProvider(), "bench-secrets", "talos:ClusterSecrets", secrets))
    return resources


def _kubeconfig(bundle: SecretsBundle) -> str:
    """Stands in for the bootstrap's kubeconfig output (the Kubernetes CA as server and client): a no-change preview
    only checks its shape and never connects."""
    pem = {name: base64.b64encode(value).decode() for name, value in (("crt", bundle.k8s.crt), ("key", bundle.k8s.key))}
    cluster = {"server": "https://api.bench.example:6443", "certificate-authority-data": pem["crt"]}
    user = {"client-certificate-data": pem["crt"], "client-key-data": pem["key"]}
    document = {"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "bench", "cluster": cluster}]}
    document["users"] = [{"name": "admin", "user": user}]
    return yaml.safe_dump(document)


def _settled(
    server: ProviderServer,
    provider: Any,
    name: str,
    token: str,
    inputs: dict[str, Any],
    computed: dict[str, Any] | None = None,
) -> tuple[ResourceDriver, dict[str, Any]]:
    """A driver whose state is what create left: the checked inputs, plus the computed outputs."""
    driver = ResourceDriver(server, provider, name, f"pulumi-python:dynamic/{token}")
    checked = server.check(driver.urn, {}, {**inputs, "__provider": driver.blob})
    assert not checked.failures, (name, checked.failures)
    driver.id, driver.inputs, driver.outputs = name, checked.inputs, {**checked.inputs, **(computed or {})}
    return driver, inputs


def _settled_config(server: ProviderServer, name: str, inputs: dict[str, Any]) -> tuple[ResourceDriver, dict[str, Any]]:
    """A TalosMachineConfig as create leaves it, its outputs rendered offline (no node involved)."""
    driver, _ = _settled(server, TalosMachineConfigProvider(), f"{name}-config", "talos:TalosMachineConfig", inputs)
    checked = {key: value for key, value in driver.outputs.items() if key != "__provider"}
    applied = Applied("maintenance", "reboot", "bench", "v1.13.9")
    driver.outputs = {**outputs(checked, render(checked), applied), "__provider": driver.blob}
    return driver, inputs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("up", "preview"))
    parser.add_argument("--scale", type=float, default=0.02, help="real-world delays x this (python -m lab's)")
    args = parser.parse_args()
    if args.only != "up":
        bench_preview()
    if args.only != "preview":
        bench_up(args.scale)


if __name__ == "__main__":
    main()
