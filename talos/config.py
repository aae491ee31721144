"""Render machine configs: the documents `talosctl gen config` emits, from cluster options and a secrets bundle.

`render_config` reproduces `talosctl gen config --with-secrets ... --with-docs=false --with-examples=false`
for the version contract (pkg/machinery/config/generate/{init,worker,network}.go): key order is Talos' struct
order, so the rendered YAML reads like talosctl's. Options talosctl has no flag for (allow scheduling on
control planes, CNI none/custom, kube-proxy disabled) are set on both roles exactly as the equivalent
cluster-wide `--config-patch` would set them; discovery off is talosctl's `--with-cluster-discovery=false`.

One deliberate difference: a bundle imported from a cluster older than Talos v1.3 carries only an AES-CBC
encryption secret; talosctl would then drop it, we keep it (`cluster.aescbcEncryptionSecret`) so the cluster
can still read its Kubernetes secrets.

`generate_config` renders, applies patches in order and validates the result.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, get_args
from urllib.parse import urlsplit

from talos.compare import masked_url
from talos.documents import Document
from talos.errors import ConfigError, UnsupportedVersionError
from talos.patches import Patch, apply_patches
from talos.pki import CertAndKey
from talos.secrets import SecretsBundle
from talos.validation import (
    DISK_TYPES,
    disk_size_ok,
    endpoint_problem,
    installer_image_problem,
    valid_dns_name,
    validate_config,
)
from talos.versions import CONTRACTS, CURRENT, VersionContract, contract_for
from talos.versions import installer_image as default_installer_image

Role = Literal["controlplane", "worker"]
Cni = Literal["flannel", "none", "custom"]
ROLES: tuple[Role, ...] = get_args(Role)
CNIS: tuple[Cni, ...] = get_args(Cni)

DISK_SELECTOR_FIELDS = ("size", "model", "serial", "modalias", "uuid", "wwid", "type", "busPath")
"""Fields of machine.install.diskSelector Talos can match on, in its struct order (`name` is refused)."""

DEFAULT_INSTALL_DISK = "/dev/sda"
POD_SUBNET = "10.244.0.0/16"
SERVICE_SUBNET = "10.96.0.0/12"
KUBEPRISM_PORT = 7445

_KUBERNETES_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
_POD_SECURITY = {
    "name": "PodSecurity",
    "configuration": {
        "apiVersion": "pod-security.admission.config.k8s.io/v1alpha1",
        "defaults": {
            "audit": "restricted",
            "audit-version": "latest",
            "enforce": "baseline",
            "enforce-version": "latest",
            "warn": "restricted",
            "warn-version": "latest",
        },
        "exemptions": {"namespaces": ["kube-system"], "runtimeClasses": [], "usernames": []},
        "kind": "PodSecurityConfiguration",
    },
}
_AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]}


@dataclass(frozen=True)
class ClusterOptions:
    """What a cluster's machine configs are rendered from; checked on construction (ConfigError names the option).

    `install_disk` defaults to /dev/sda unless `install_disk_selector` is given; setting both is an error.
    `kubernetes_version` and `installer_image` default to the contract's pins; the installer is always written.
    """

    cluster_name: str
    endpoint: str
    talos_version: str = CURRENT.talos_version
    kubernetes_version: str | None = None
    dns_domain: str = "cluster.local"
    installer_image: str | None = None
    install_disk: str | None = None
    install_disk_selector: Mapping[str, str] | None = None
    discovery: bool = True
    allow_scheduling_on_control_planes: bool = False
    cni: Cni = "flannel"
    cni_urls: tuple[str, ...] = ()
    kube_proxy: bool = True
    additional_sans: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_options(self)

    @property
    def contract(self) -> VersionContract:
        return contract_for(self.talos_version)

    @property
    def kubernetes(self) -> str:
        """The Kubernetes version without a leading `v`, as talosctl uses it in image tags."""
        return (self.kubernetes_version or self.contract.kubernetes_version).removeprefix("v")

    @property
    def installer(self) -> str:
        return self.installer_image or default_installer_image(self.talos_version)


def render_config(options: ClusterOptions, secrets: SecretsBundle, role: Role) -> list[Document]:
    """The documents `talosctl gen config` emits for `role`: the v1alpha1 document, then HostnameConfig."""
    if role not in ROLES:
        raise ConfigError("render_config", "role", f"unknown role {role!r}", f"use one of {', '.join(ROLES)}")
    control_plane = role == "controlplane"
    v1alpha1: Document = {
        "version": "v1alpha1",
        "debug": False,
        "persist": True,
        "machine": _machine(options, secrets, control_plane),
        "cluster": _cluster(options, secrets, control_plane),
    }
    return [v1alpha1, {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"}]


def generate_config(
    options: ClusterOptions, secrets: SecretsBundle, role: Role, patches: Sequence[Patch] = ()
) -> list[Document]:
    """Render the config of `role`, apply `patches` in the order given, validate, and return the documents."""
    documents = render_config(options, secrets, role)
    if patches:
        documents = apply_patches(documents, list(patches))
    validate_config(documents, options.contract)
    return documents


def _machine(options: ClusterOptions, secrets: SecretsBundle, control_plane: bool) -> dict[str, Any]:
    kubernetes = options.kubernetes
    install: dict[str, Any] = {}
    if options.install_disk_selector:
        selector = options.install_disk_selector
        install["diskSelector"] = {key: selector[key] for key in DISK_SELECTOR_FIELDS if key in selector}
    else:
        install["disk"] = options.install_disk or DEFAULT_INSTALL_DISK
    install.update(image=options.installer, wipe=False, grubUseUKICmdline=True)
    machine: dict[str, Any] = {
        "type": "controlplane" if control_plane else "worker",
        "token": secrets.trustd_token,
        "ca": _pair(secrets.os, with_key=control_plane),
        "certSANs": list(options.additional_sans),
        "kubelet": {
            "image": f"ghcr.io/siderolabs/kubelet:v{kubernetes}",
            "defaultRuntimeSeccompProfileEnabled": True,
            "disableManifestsDirectory": True,
        },
    }
    if options.contract.network_empty_map:
        machine["network"] = {}
    machine["install"] = install
    machine["features"] = {
        "diskQuotaSupport": True,
        "kubePrism": {"enabled": True, "port": KUBEPRISM_PORT},
        "hostDNS": {"enabled": True, "forwardKubeDNSToHost": True},
    }
    if control_plane:
        machine["nodeLabels"] = {"node.kubernetes.io/exclude-from-external-load-balancers": ""}
    return machine


def _cluster(options: ClusterOptions, secrets: SecretsBundle, control_plane: bool) -> dict[str, Any]:
    kubernetes = options.kubernetes
    network: dict[str, Any] = {}
    if options.cni != "flannel":
        network["cni"] = {"name": options.cni, **({"urls": list(options.cni_urls)} if options.cni_urls else {})}
    network.update(dnsDomain=options.dns_domain, podSubnets=[POD_SUBNET], serviceSubnets=[SERVICE_SUBNET])
    cluster: dict[str, Any] = {
        "id": secrets.cluster_id,
        "secret": secrets.cluster_secret,
        "controlPlane": {"endpoint": options.endpoint},
        "clusterName": options.cluster_name,
        "network": network,
        "token": secrets.bootstrap_token,
    }
    proxy: dict[str, Any] = {} if options.kube_proxy else {"disabled": True}
    if control_plane:
        if secrets.secretbox_encryption_secret:
            cluster["secretboxEncryptionSecret"] = secrets.secretbox_encryption_secret
        elif secrets.aescbc_encryption_secret:
            cluster["aescbcEncryptionSecret"] = secrets.aescbc_encryption_secret
        api_server: dict[str, Any] = {"image": f"registry.k8s.io/kube-apiserver:v{kubernetes}"}
        if options.additional_sans:
            api_server["certSANs"] = list(options.additional_sans)
        api_server.update(admissionControl=[copy.deepcopy(_POD_SECURITY)], auditPolicy=copy.deepcopy(_AUDIT_POLICY))
        cluster.update(
            ca=_pair(secrets.k8s, with_key=True),
            aggregatorCA=_pair(secrets.k8s_aggregator, with_key=True),
            serviceAccount={"key": _b64(secrets.k8s_service_account_key)},
            apiServer=api_server,
            controllerManager={"image": f"registry.k8s.io/kube-controller-manager:v{kubernetes}"},
            proxy={**proxy, "image": f"registry.k8s.io/kube-proxy:v{kubernetes}"},
            scheduler={"image": f"registry.k8s.io/kube-scheduler:v{kubernetes}"},
        )
    else:
        cluster["ca"] = _pair(secrets.k8s, with_key=False)
        if proxy:
            cluster["proxy"] = proxy
    cluster["discovery"] = {
        "enabled": options.discovery,
        "registries": {"kubernetes": {"disabled": True}, "service": {}},
    }
    if control_plane:
        cluster["etcd"] = {"ca": _pair(secrets.etcd, with_key=True)}
    if options.allow_scheduling_on_control_planes:
        cluster["allowSchedulingOnControlPlanes"] = True
    return cluster


def _pair(pair: CertAndKey, *, with_key: bool) -> dict[str, str]:
    return {"crt": _b64(pair.crt), "key": _b64(pair.key) if with_key else ""}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _reject(option: str, reason: str, fix: str) -> NoReturn:
    raise ConfigError("ClusterOptions", option, reason, fix)


def _check_options(options: ClusterOptions) -> None:
    """Refuse options that cannot make a working config, naming the option and the fix."""
    if not options.cluster_name.strip():
        _reject("cluster_name", "is empty", "name the cluster, e.g. 'prod'")
    if reason := endpoint_problem(options.endpoint):
        _reject("endpoint", f"{masked_url(options.endpoint)!r} is malformed: {reason}", "use https://<host>:6443")
    if urlsplit(options.endpoint).port is None:
        _reject(
            "endpoint",
            f"{masked_url(options.endpoint)!r} has no port",
            "add the Kubernetes API port: https://<host>:6443",
        )
    try:
        contract_for(options.talos_version)
    except UnsupportedVersionError:
        _reject(
            "talos_version",
            f"{options.talos_version!r} is not a release of a supported Talos minor",
            f"use a release such as {', '.join(c.talos_version for c in CONTRACTS.values())}",
        )
    if options.kubernetes_version is not None and not _KUBERNETES_VERSION.match(options.kubernetes_version):
        _reject("kubernetes_version", f"{options.kubernetes_version!r} is not a version", "write e.g. 1.36.3")
    if not valid_dns_name(options.dns_domain):
        _reject("dns_domain", f"{options.dns_domain!r} is not a DNS name", "use e.g. cluster.local")
    image = options.installer_image
    if image is not None and (reason := installer_image_problem(image)):
        _reject(
            "installer_image",
            f"{masked_url(image)!r}: {reason}",
            f"pin it to a Talos release or a digest, e.g. {default_installer_image(options.talos_version)}",
        )
    _check_install_target(options)
    if options.cni not in CNIS:
        _reject("cni", f"unknown CNI {options.cni!r}", f"use one of {', '.join(CNIS)}")
    if options.cni == "custom" and not options.cni_urls:
        _reject("cni_urls", "the custom CNI needs the URLs of its manifests", "list them in cni_urls")
    if options.cni != "custom" and options.cni_urls:
        _reject("cni_urls", f"the {options.cni!r} CNI takes no manifest URLs", "set cni='custom' or drop cni_urls")
    for url in options.cni_urls:
        if not (urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname):
            _reject("cni_urls", f"{masked_url(url)!r} is not an http(s) URL", "write e.g. https://example.com/cni.yaml")
    for san in options.additional_sans:
        if not san.strip() or any(char.isspace() for char in san):
            _reject("additional_sans", f"{san!r} is not a DNS name or IP address", "write e.g. api.example.com")


def _check_install_target(options: ClusterOptions) -> None:
    selector = options.install_disk_selector
    if options.install_disk is not None and selector is not None:
        _reject(
            "install_disk",
            "install_disk and install_disk_selector are mutually exclusive",
            "set only one: a disk path, or a selector that matches exactly one disk",
        )
    if options.install_disk is not None and not options.install_disk.startswith("/dev/"):
        _reject("install_disk", f"{options.install_disk!r} is not a device path", "write e.g. /dev/nvme0n1")
    if selector is None:
        return
    if not selector:
        _reject("install_disk_selector", "is empty", "set e.g. {'wwid': 'eui.*'}, or use install_disk")
    for key, value in selector.items():
        if key == "name":
            _reject(
                "install_disk_selector", "Talos cannot select the install disk by name", "use wwid, serial or model"
            )
        if key not in DISK_SELECTOR_FIELDS:
            _reject("install_disk_selector", f"unknown field {key!r}", f"use {', '.join(DISK_SELECTOR_FIELDS)}")
        if not isinstance(value, str) or not value:
            _reject("install_disk_selector", f"{key} must be a non-empty string", f"quote the value of {key}")
    if "size" in selector and not disk_size_ok(selector["size"]):
        _reject("install_disk_selector", f"size {selector['size']!r} is not a size condition", "write e.g. '>= 400GB'")
    if "type" in selector and selector["type"] not in DISK_TYPES:
        _reject("install_disk_selector", f"type {selector['type']!r} is unknown", f"use one of {', '.join(DISK_TYPES)}")
