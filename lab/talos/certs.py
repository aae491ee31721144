"""The certificates a lab Talos node serves and mints, shaped as Talos makes them (talos.md §6.1, §7.1, §8).

- maintenance: a fresh Ed25519 "maintenance root" CA (empty subject, 24 h) and a leaf
  `CN=maintenance-service.talos.dev`, SANs = addresses + 127.0.0.1 + ::1 + hostname, EKU ServerAuth
  (Talos' secrets.MaintenanceCertSANsController);
- configured: the apid certificate, Ed25519, signed by the config's OS CA (`machine.ca`), CN = hostname,
  SANs = certSANs + addresses + 127.0.0.1 (no ::1) + hostname, EKU ServerAuth, 24 h
  (Talos' secrets.APICertSANsController);
- the admin kubeconfig: a fresh ECDSA P-256 client certificate `CN=admin, O=system:masters` signed by the
  config's Kubernetes CA, inside client-go's kubeconfig layout.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import yaml

from talos.api.tls import MAINTENANCE_COMMON_NAME
from talos.pki import CertAndKey, generate_ca, issue_certificate

LEAF_LIFETIME = timedelta(hours=24)
KUBECONFIG_SKEW = timedelta(seconds=10)
MAINTENANCE_LOOPBACKS = ("127.0.0.1", "::1")
APID_LOOPBACKS = ("127.0.0.1",)
"""The loopback SANs Talos adds: both families in maintenance mode, IPv4 only for the configured apid."""


def maintenance_certificate(addresses: Sequence[str], hostname: str) -> CertAndKey:
    """The leaf apid serves in maintenance mode, signed by a new maintenance root that is then forgotten."""
    root = generate_ca("ed25519", None, lifetime=LEAF_LIFETIME)
    leaf = issue_certificate(
        root,
        key_algorithm="ed25519",
        common_name=MAINTENANCE_COMMON_NAME,
        dns_names=[hostname],
        ip_addresses=_ips(addresses, MAINTENANCE_LOOPBACKS),
        extended_key_usages=("server_auth",),
        lifetime=LEAF_LIFETIME,
    )
    return leaf


def apid_certificate(
    os_ca: CertAndKey, addresses: Sequence[str], hostname: str, cert_sans: Sequence[str]
) -> CertAndKey:
    """The configured node's apid certificate, issued from the machine config's OS CA."""
    ips = [san for san in cert_sans if _is_ip(san)] + _ips(addresses, APID_LOOPBACKS)
    dns = [san for san in cert_sans if not _is_ip(san)] + [hostname]
    return issue_certificate(
        os_ca,
        key_algorithm="ed25519",
        common_name=hostname,
        dns_names=list(dict.fromkeys(dns)),
        ip_addresses=list(dict.fromkeys(ips)),
        extended_key_usages=("server_auth",),
        lifetime=LEAF_LIFETIME,
    )


def admin_kubeconfig(
    cluster_name: str,
    endpoint: str,
    k8s_ca: CertAndKey,
    accepted_cas: Sequence[bytes] = (),
    lifetime: timedelta = timedelta(hours=8760),
) -> str:
    """An admin kubeconfig as Talos' Kubeconfig call writes it (client-go layout, keys sorted)."""
    now = datetime.now(UTC)
    client = issue_certificate(
        k8s_ca,
        key_algorithm="ecdsa-p256",
        common_name="admin",
        organizations=["system:masters"],
        extended_key_usages=("client_auth",),
        key_usage=("digital_signature", "key_encipherment"),
        not_before=now - KUBECONFIG_SKEW,
        lifetime=lifetime + KUBECONFIG_SKEW,
    )
    user = context = f"admin@{cluster_name}"
    document = {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority-data": _b64(b"".join([*accepted_cas, k8s_ca.crt])),
                    "server": endpoint,
                },
                "name": cluster_name,
            }
        ],
        "contexts": [{"context": {"cluster": cluster_name, "namespace": "default", "user": user}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [
            {"name": user, "user": {"client-certificate-data": _b64(client.crt), "client-key-data": _b64(client.key)}}
        ],
    }
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def _ips(addresses: Sequence[str], loopbacks: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*addresses, *loopbacks]))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
