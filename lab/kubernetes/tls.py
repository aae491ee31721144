"""kube-apiserver's TLS as Talos sets it up (talos.md §8; Talos v1.13.9 secrets.KubernetesDynamicCerts).

The serving certificate is issued from the cluster's Kubernetes CA: `CN=kube-apiserver, O=kube-master`,
KeyUsage DigitalSignature + KeyEncipherment, EKU ServerAuth, one year; its SANs are the names given (the
endpoint's host, the node's addresses) plus those Talos always adds (`kubernetes`, `kubernetes.default`,
`kubernetes.default.svc`, `kubernetes.default.svc.<domain>`, `localhost`, `127.0.0.1`).

Client certificates are requested and, when sent, verified against the Kubernetes CA (EKU ClientAuth).
kube-apiserver (Go `tls.RequestClientCert`) lets a certificate from another CA finish the handshake and then
answers 401; Python's `ssl` cannot request a certificate without verifying it, so here such a client fails
the handshake instead (alert `unknown_ca`). Either way it gets nothing.
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from talos.pki import CertAndKey, issue_certificate, pem_for_ssl

SERVING_LIFETIME = timedelta(days=365)
"""Talos' KubernetesDefaultCertificateValidityDuration."""


def serving_certificate(ca: CertAndKey, server_names: Sequence[str], dns_domain: str = "cluster.local") -> CertAndKey:
    """kube-apiserver's serving certificate for `server_names` (DNS names and IP addresses, mixed)."""
    if not server_names:
        raise ValueError("server_names is empty (fix: pass the endpoint's host and the node's addresses)")
    fixed = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", f"kubernetes.default.svc.{dns_domain}"]
    dns_names: list[str] = []
    ips: list[str] = []
    for name in [*server_names, *fixed, "localhost", "127.0.0.1"]:
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns_names.append(name)
    return issue_certificate(
        ca,
        key_algorithm="ecdsa-p256",
        common_name="kube-apiserver",
        organizations=["kube-master"],
        dns_names=list(dict.fromkeys(dns_names)),
        ip_addresses=list(dict.fromkeys(ips)),
        extended_key_usages=("server_auth",),
        key_usage=("digital_signature", "key_encipherment"),
        lifetime=SERVING_LIFETIME,
    )


def server_context(ca: CertAndKey, serving: CertAndKey) -> ssl.SSLContext:
    """TLS 1.2+, HTTP/1.1, client certificates optional but verified against `ca` when sent."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=ca.crt.decode())
    context.set_alpn_protocols(["http/1.1"])
    with tempfile.TemporaryDirectory() as folder:
        crt, key = Path(folder, "apiserver.crt"), Path(folder, "apiserver.key")
        crt.write_bytes(serving.crt)
        key.write_bytes(pem_for_ssl(serving.key))
        context.load_cert_chain(crt, key)
    return context
