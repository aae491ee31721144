"""How a lab node reads machine configs: acceptance, install targets, immediate changes."""

from __future__ import annotations

import base64

import pytest

from lab.talos.machineconfig import (
    ConfigRejected,
    accept_config,
    immediate_change_problem,
    match_disk_selector,
)
from lab.talos.storage import BlockDevice
from lab.talos.testing import ClusterMaterial

NVME = BlockDevice("nvme0n1", 512 * 10**9, model="SAMSUNG MZVL2512", serial="S1", transport="nvme")
HDD = BlockDevice("sda", 4 * 10**12, model="TOSHIBA MG04", serial="H1", transport="sata", rotational=True)
DISKS = (NVME, HDD)


@pytest.mark.parametrize(
    ("selector", "picked"),
    [
        ({"type": "nvme"}, ["nvme0n1"]),
        ({"type": "ssd"}, ["nvme0n1"]),
        ({"type": "hdd"}, ["sda"]),
        ({"model": "TOSHIBA*"}, ["sda"]),
        ({"size": ">= 1TB"}, ["sda"]),
        ({"size": "< 1TiB"}, ["nvme0n1"]),
        ({"size": "512GB"}, ["nvme0n1"]),
        ({"serial": "S1", "type": "hdd"}, []),
    ],
)
def test_disk_selector(selector: dict[str, str], picked: list[str]) -> None:
    assert [d.name for d in DISKS if match_disk_selector(selector, d)] == picked


def test_readonly_disk_is_never_selected() -> None:
    readonly = BlockDevice("sdb", 10**9, transport="usb", readonly=True)
    assert not match_disk_selector({}, readonly)


def test_install_disk_must_exist_when_installing(cluster: ClusterMaterial) -> None:
    with pytest.raises(ConfigRejected, match="install disk /dev/sda does not exist"):
        accept_config(cluster.controlplane.encode(), "v1.13.9", [NVME], installing=True)
    assert accept_config(cluster.controlplane.encode(), "v1.13.9", [NVME], installing=False).control_plane


def test_selector_matching_nothing_is_refused_like_talos(cluster: ClusterMaterial) -> None:
    config = cluster.controlplane.replace("disk: /dev/sda", "diskSelector:\n            type: hdd")
    with pytest.raises(ConfigRejected, match=r"no disks matched the expression: disk\.type == hdd"):
        accept_config(config.encode(), "v1.13.9", [NVME], installing=True)


def test_unparsable_config_is_refused() -> None:
    with pytest.raises(ConfigRejected, match="failed to parse config"):
        accept_config(b"machine: [", "v1.13.9", DISKS, installing=False)


def test_config_fields_a_node_acts_on(cluster: ClusterMaterial) -> None:
    config = accept_config(cluster.controlplane.encode(), "v1.13.9", DISKS, installing=False)
    assert config.os_ca == cluster.secrets.os
    assert config.kubernetes_ca == cluster.secrets.k8s
    assert (config.cluster_name, config.endpoint) == ("lab", f"https://{cluster.endpoint_host}:6443")
    assert config.kubeconfig_lifetime.total_seconds() == 8760 * 3600
    worker = accept_config(cluster.worker.encode(), "v1.13.9", DISKS, installing=False)
    assert not worker.control_plane and worker.os_ca.key == b""


@pytest.mark.parametrize(
    ("before", "after", "immediate"),
    [
        ('exclude-from-external-load-balancers: ""', 'role: "db"', True),
        ("certSANs: []", "certSANs:\n        - 192.0.2.1", True),
        ("diskQuotaSupport: true", "diskQuotaSupport: false", False),
        ("kubePrism:\n            enabled: true", "kubePrism:\n            enabled: false", True),
    ],
)
def test_changes_applied_without_reboot(cluster: ClusterMaterial, before: str, after: str, immediate: bool) -> None:
    current = accept_config(cluster.controlplane.encode(), "v1.13.9", DISKS, installing=False)
    new = accept_config(cluster.controlplane.replace(before, after).encode(), "v1.13.9", DISKS, installing=False)
    problem = immediate_change_problem(current, new)
    assert (problem is None) is immediate
    if problem:
        assert problem.startswith("this config change can't be applied in immediate mode\ndiff:\n")


def test_repr_holds_no_key_material(cluster: ClusterMaterial) -> None:
    config = accept_config(cluster.controlplane.encode(), "v1.13.9", DISKS, installing=False)
    text = repr(config)
    for key in (config.os_ca.key, config.kubernetes_ca.key):
        assert key and base64.b64encode(key).decode() not in text and key.decode() not in text
