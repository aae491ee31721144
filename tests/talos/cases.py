"""A catalogue of rendering cases: cluster options that together exercise every option of ClusterOptions.

Other tests reuse it (schema conformance, the Talos oracle, benches): render each case for each of its roles.
A case with `golden` has talosctl's own output for both roles in tests/data/configs/<golden>-<role>.yaml,
generated from tests/data/secrets/talosctl-secrets.yaml (see tests/data/configs/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from talos.config import ROLES, ClusterOptions, Role

CONFIGS_DATA = Path(__file__).parents[1] / "data" / "configs"
FACTORY_SCHEMATIC = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"


@dataclass(frozen=True)
class RenderCase:
    """Options to render, the roles to render them for, and talosctl's output when we have it."""

    name: str
    options: ClusterOptions
    roles: tuple[Role, ...] = ROLES
    golden: str | None = None

    def golden_file(self, role: Role) -> Path:
        assert self.golden is not None, f"case {self.name} has no golden output"
        return CONFIGS_DATA / f"{self.golden}-{role}.yaml"


def _runbook(talos_version: str) -> ClusterOptions:
    """The Hetzner runbook's cluster: selector install, no CNI, no kube-proxy, workloads on control planes."""
    return ClusterOptions(
        cluster_name="prod",
        endpoint="https://203.0.113.10:6443",
        talos_version=talos_version,
        kubernetes_version="1.34.2",
        dns_domain="prod.internal",
        installer_image=f"factory.talos.dev/metal-installer/{FACTORY_SCHEMATIC}:{talos_version}",
        install_disk_selector={"wwid": "eui.*", "size": ">= 400GB"},
        discovery=False,
        allow_scheduling_on_control_planes=True,
        cni="none",
        kube_proxy=False,
        additional_sans=("api.prod.example", "203.0.113.10"),
    )


CASES: tuple[RenderCase, ...] = (
    RenderCase(
        "v1.13-defaults",
        ClusterOptions(cluster_name="demo", endpoint="https://api.demo.example:6443", talos_version="v1.13.9"),
        golden="v1.13-defaults",
    ),
    RenderCase(
        "v1.12-defaults",
        ClusterOptions(cluster_name="demo", endpoint="https://api.demo.example:6443", talos_version="v1.12.11"),
        golden="v1.12-defaults",
    ),
    RenderCase("v1.13-runbook", _runbook("v1.13.9"), golden="v1.13-runbook"),
    RenderCase("v1.12-runbook", _runbook("v1.12.11"), golden="v1.12-runbook"),
    RenderCase(
        "nvme-install-disk",
        ClusterOptions(cluster_name="lab", endpoint="https://127.0.10.1:6443", install_disk="/dev/nvme0n1"),
    ),
    RenderCase(
        "full-disk-selector",
        ClusterOptions(
            cluster_name="lab",
            endpoint="https://lab.example:6443",
            install_disk_selector={
                "busPath": "/pci0000:00/*",
                "type": "nvme",
                "model": "SAMSUNG*",
                "serial": "S4*",
                "modalias": "pci:*",
                "uuid": "*",
                "size": "<= 2TiB",
            },
        ),
    ),
    RenderCase(
        "custom-cni",
        ClusterOptions(
            cluster_name="lab",
            endpoint="https://lab.example:6443",
            cni="custom",
            cni_urls=("https://example.com/cilium.yaml",),
        ),
    ),
    RenderCase(
        "no-kube-proxy-v1.12",
        ClusterOptions(
            cluster_name="lab", endpoint="https://lab.example:6443", talos_version="v1.12.11", kube_proxy=False
        ),
    ),
    RenderCase(
        "discovery-off",
        ClusterOptions(cluster_name="lab", endpoint="https://lab.example:6443", discovery=False),
        roles=("worker",),
    ),
    RenderCase(
        "scheduling-on-control-planes",
        ClusterOptions(
            cluster_name="lab", endpoint="https://lab.example:6443", allow_scheduling_on_control_planes=True
        ),
        roles=("controlplane",),
    ),
    RenderCase(
        "ipv6-endpoint-kubernetes-v-prefix",
        ClusterOptions(
            cluster_name="v6",
            endpoint="https://[2001:db8::10]:6443",
            kubernetes_version="v1.35.0",
            additional_sans=("2001:db8::10", "api.v6.example"),
        ),
    ),
)


def case(name: str) -> RenderCase:
    """The catalogue case called `name`."""
    return next(c for c in CASES if c.name == name)


def rendered_cases(*, golden_only: bool = False) -> list[pytest.ParameterSet]:
    """Every (case, role) pair of the catalogue as parameters named `<case>-<role>`."""
    return [
        pytest.param(c, role, id=f"{c.name}-{role}") for c in CASES if c.golden or not golden_only for role in c.roles
    ]
