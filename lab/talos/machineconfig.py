"""A lab node's reading of a machine config: accept or refuse it as Talos would, then the fields it acts on.

Refusals raise ConfigRejected with the message the node puts in its InvalidArgument: the project's
validator stands in for Talos' (parse, schema types, required fields), and the install target must exist
on the machine. Talos checks a `diskSelector` at apply time ("no disks matched the expression: ...") but an
explicit `disk` only when the installer runs; the lab refuses a missing disk at apply time too, so a wrong
disk shows up as an error instead of a node that never comes back.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from lab.talos.storage import BlockDevice
from talos.compare import render_diff
from talos.documents import Document, document_key, parse_documents
from talos.errors import TalosError
from talos.pki import CertAndKey
from talos.validation import validate_config
from talos.versions import CURRENT, contract_for

# Parts of the v1alpha1 document a running node applies without a reboot (Runtime.CanApplyImmediate).
_IMMEDIATE = (
    ("debug",),
    ("cluster",),
    *(
        ("machine", key)
        for key in (
            "ca",
            "acceptedCAs",
            "time",
            "certSANs",
            "install",
            "network",
            "sysfs",
            "sysctls",
            "logging",
            "controlPlane",
            "kubelet",
            "kernel",
            "registries",
            "pods",
            "seccompProfiles",
            "nodeAnnotations",
            "nodeLabels",
            "nodeTaints",
        )
    ),
    *(
        ("machine", "features", key)
        for key in ("kubernetesTalosAPIAccess", "kubePrism", "hostDNS", "imageCache", "nodeAddressSortAlgorithm")
    ),
)
_SIZE = re.compile(r"^\s*(>=|<=|>|<|==)?\s*([0-9.]+)\s*([a-zA-Z]*)\s*$")
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15, "e": 10**18}


class ConfigRejected(TalosError):
    """The node refuses the machine config; the message is what its InvalidArgument carries."""


@dataclass(frozen=True)
class MachineConfig:
    """An accepted machine config and the fields a lab node acts on (raw and documents hold CA keys)."""

    raw: bytes = field(repr=False)
    documents: tuple[Document, ...] = field(repr=False)

    @property
    def v1alpha1(self) -> dict[str, Any]:
        return next(doc for doc in self.documents if document_key(doc)[1] == "v1alpha1")

    @property
    def machine(self) -> dict[str, Any]:
        return self.v1alpha1.get("machine") or {}

    @property
    def cluster(self) -> dict[str, Any]:
        return self.v1alpha1.get("cluster") or {}

    @property
    def control_plane(self) -> bool:
        return self.machine.get("type") in ("controlplane", "init")

    @property
    def machine_type(self) -> str:
        return str(self.machine.get("type") or "")

    @property
    def os_ca(self) -> CertAndKey:
        return _pair(self.machine.get("ca"))

    @property
    def accepted_cas(self) -> list[bytes]:
        """CAs whose client certificates apid accepts: machine.acceptedCAs, then machine.ca."""
        extra = [_decode(ca.get("crt")) for ca in self.machine.get("acceptedCAs") or []]
        return [*extra, self.os_ca.crt]

    @property
    def kubernetes_ca(self) -> CertAndKey:
        return _pair(self.cluster.get("ca"))

    @property
    def kubernetes_accepted_cas(self) -> list[bytes]:
        return [_decode(ca.get("crt")) for ca in self.cluster.get("acceptedCAs") or []]

    @property
    def cluster_id(self) -> str:
        return str(self.cluster.get("id") or self.cluster.get("clusterName") or "")

    @property
    def cluster_name(self) -> str:
        return str(self.cluster.get("clusterName") or "")

    @property
    def endpoint(self) -> str:
        return str((self.cluster.get("controlPlane") or {}).get("endpoint") or "")

    @property
    def cert_sans(self) -> list[str]:
        return [str(san) for san in self.machine.get("certSANs") or []]

    @property
    def kubeconfig_lifetime(self) -> timedelta:
        text = str((self.cluster.get("adminKubeconfig") or {}).get("certLifetime") or "8760h")
        return _duration(text)

    @property
    def api_server_sans(self) -> list[str]:
        """cluster.apiServer.certSANs: extra names of kube-apiserver's serving certificate."""
        return [str(san) for san in (self.cluster.get("apiServer") or {}).get("certSANs") or []]

    @property
    def kubernetes_version(self) -> str:
        """The kubelet's version, from the tag of machine.kubelet.image (`v1.36.3`)."""
        image = str((self.machine.get("kubelet") or {}).get("image") or "")
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        return tag or "v" + CURRENT.kubernetes_version

    @property
    def hostname(self) -> str | None:
        """A static hostname from HostnameConfig or machine.network.hostname, if the config pins one."""
        for doc in self.documents:
            if doc.get("kind") == "HostnameConfig" and doc.get("hostname"):
                return str(doc["hostname"])
        return (self.machine.get("network") or {}).get("hostname")


def accept_config(raw: bytes, talos_version: str, devices: Sequence[BlockDevice], *, installing: bool) -> MachineConfig:
    """Parse and validate a config as the node would; ConfigRejected with the reason otherwise."""
    try:
        documents = parse_documents(raw, source="config")
    except TalosError as err:
        raise ConfigRejected(f"failed to parse config: {err}") from None
    try:
        contract = contract_for(talos_version)
    except TalosError:
        contract = CURRENT
    try:
        validate_config(documents, contract)
    except TalosError as err:
        raise ConfigRejected(str(err)) from None
    config = MachineConfig(raw, tuple(documents))
    if installing:
        _check_install_target(config.machine.get("install") or {}, devices)
    return config


def immediate_change_problem(current: MachineConfig, new: MachineConfig) -> str | None:
    """Why `new` cannot replace `current` without a reboot, or None when it can (only v1alpha1 counts)."""
    before, after = _without_immediate(current.v1alpha1), _without_immediate(new.v1alpha1)
    if before == after:
        return None
    return f"this config change can't be applied in immediate mode\ndiff:\n{render_diff([before], [after])}"


def config_diff(current: MachineConfig | None, new: MachineConfig) -> str:
    """The dry-run summary's diff (secrets masked)."""
    diff = render_diff(list(current.documents) if current else [], list(new.documents))
    return "Config diff:\n\n" + (diff or "No changes.")


def match_disk_selector(selector: dict[str, Any], device: BlockDevice) -> bool:
    """Whether a `machine.install.diskSelector` picks `device` (all conditions, on a writable real disk)."""
    if not device.transport or device.readonly:
        return False
    if "size" in selector and not _size_matches(str(selector["size"]), device.size):
        return False
    values = {"model": device.model, "serial": device.serial, "wwid": device.wwid, "busPath": device.bus_path}
    for key, value in values.items():
        if key in selector and not fnmatch.fnmatchcase(value, str(selector[key])):
            return False
    for key in ("modalias", "uuid"):
        if key in selector:
            return False  # the lab's disks have neither
    kind = selector.get("type")
    types = {
        "ssd": not device.rotational,
        "hdd": device.rotational,
        "nvme": device.transport == "nvme",
        "sd": device.transport == "mmc",
    }
    return kind is None or types.get(str(kind), False)


def _check_install_target(install: dict[str, Any], devices: Sequence[BlockDevice]) -> None:
    selector = install.get("diskSelector")
    if selector:
        if not any(match_disk_selector(selector, device) for device in devices):
            raise ConfigRejected(f"no disks matched the expression: {_expression(selector)}")
        return
    disk = install.get("disk")
    names = {device.dev_path for device in devices} | {link for device in devices for link in device.symlinks}
    if disk and disk not in names:
        known = ", ".join(device.dev_path for device in devices) or "none"
        raise ConfigRejected(f"install disk {disk} does not exist on this machine (disks: {known})")


def _expression(selector: dict[str, Any]) -> str:
    """The selector as Talos prints its CEL expression (roughly)."""
    terms = []
    if "size" in selector:
        match = _SIZE.match(str(selector["size"]))
        op = (match and match[1]) or "=="
        terms.append(f"disk.size {op} {_parse_size(str(selector['size']))}u")
    for key, value in sorted(selector.items()):
        if key not in ("size", "type"):
            field = {"busPath": "bus_path"}.get(key, key)
            terms.append(f'glob("{value}", disk.{field})')
    if "type" in selector:
        terms.append(f"disk.type == {selector['type']}")
    return " && ".join([*terms, 'disk.transport != ""', "!disk.readonly"])


def _size_matches(text: str, size: int) -> bool:
    match = _SIZE.match(text)
    if match is None:
        return False
    wanted = _parse_size(text)
    op = match[1] or "=="
    return {"==": size == wanted, ">=": size >= wanted, "<=": size <= wanted, ">": size > wanted, "<": size < wanted}[
        op
    ]


def _parse_size(text: str) -> int:
    """go-humanize ParseBytes: `4GB` = 4*1000^3, `4GiB` = 4*1024^3, a bare number is bytes."""
    match = _SIZE.match(text)
    if match is None:
        return -1
    unit = match[3].lower()
    binary = unit.endswith("ib") or (len(unit) == 2 and unit.endswith("i"))
    prefix = unit[:1] if unit not in ("", "b") else ""
    factor = 1024 ** ("kmgtpe".index(prefix) + 1) if binary and prefix else _UNITS.get(prefix, 1)
    return int(float(match[2]) * factor)


def _without_immediate(doc: dict[str, Any]) -> dict[str, Any]:
    copied = copy.deepcopy(doc)
    for path in _IMMEDIATE:
        parent: Any = copied
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return copied


def _pair(value: Any) -> CertAndKey:
    value = value or {}
    return CertAndKey(_decode(value.get("crt")), _decode(value.get("key")))


def _decode(value: Any) -> bytes:
    return base64.b64decode(str(value)) if value else b""


def _duration(text: str) -> timedelta:
    """A Go duration such as `8760h` or `1h30m`."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    seconds = sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(ms|h|m|s)", text))
    return timedelta(seconds=seconds or 8760 * 3600)
