"""TLS between the client and a lab node: Ed25519 on both ends, and the identities each side refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from lab.talos.node import TalosNode
from lab.talos.testing import ClusterMaterial, NodeFactory
from talos.api.client import TalosClient
from talos.api.errors import NodeConfiguredError, TlsIdentityError
from talos.api.tls import MAINTENANCE_COMMON_NAME
from talos.pki import issue_certificate
from talos.talosconfig import TalosContext


@pytest.fixture
def controlplane(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> TalosNode:
    return talos_nodes.start(config=cluster.controlplane)


@pytest.fixture(scope="module")
def other_cluster(talos_network: object) -> ClusterMaterial:
    return ClusterMaterial.generate("127.0.0.1", name="other")


def test_mutual_tls_uses_ed25519_on_both_ends(controlplane: TalosNode, cluster: ClusterMaterial) -> None:
    with TalosClient(controlplane.address, cluster.admin) as client:
        assert client.version().configured
        server_der = client.server_certificate()
    server = x509.load_der_x509_certificate(server_der or b"")
    server.verify_directly_issued_by(x509.load_pem_x509_certificate(cluster.secrets.os.crt))
    assert isinstance(server.public_key(), ed25519.Ed25519PublicKey)
    seen = x509.load_der_x509_certificate(controlplane.listener.last_client_certificate or b"")
    assert isinstance(seen.public_key(), ed25519.Ed25519PublicKey)
    assert seen == x509.load_pem_x509_certificate(cluster.admin.crt)


def test_maintenance_certificate_is_ed25519_from_an_anonymous_root(talos_nodes: NodeFactory) -> None:
    """As Talos: the leaf is issued by an ephemeral maintenance root whose subject is empty, not by itself."""
    node = talos_nodes.start()
    with TalosClient(node.address) as client:
        client.version()
        der = client.server_certificate()
    certificate = x509.load_der_x509_certificate(der or b"")
    assert isinstance(certificate.public_key(), ed25519.Ed25519PublicKey)
    assert certificate.subject.rfc4514_string() == f"CN={MAINTENANCE_COMMON_NAME}"
    assert certificate.issuer.rfc4514_string() == ""


def test_missing_client_certificate_is_rejected(controlplane: TalosNode) -> None:
    with TalosClient(controlplane.address) as client, pytest.raises(NodeConfiguredError, match="requires a client"):
        client.version()


def test_server_from_another_ca_is_rejected(controlplane: TalosNode, other_cluster: ClusterMaterial) -> None:
    with (
        TalosClient(controlplane.address, other_cluster.admin) as client,
        pytest.raises(TlsIdentityError, match="not signed by the cluster's OS CA"),
    ):
        client.version()


def test_client_certificate_from_another_ca_is_rejected(
    controlplane: TalosNode, cluster: ClusterMaterial, other_cluster: ClusterMaterial
) -> None:
    foreign = TalosContext(ca=cluster.secrets.os.crt, crt=other_cluster.admin.crt, key=other_cluster.admin.key)
    with (
        TalosClient(controlplane.address, foreign) as client,
        pytest.raises(TlsIdentityError, match="refused our client certificate"),
    ):
        client.version()


def test_client_certificate_without_exact_client_auth_usage_is_rejected(
    controlplane: TalosNode, cluster: ClusterMaterial
) -> None:
    both = issue_certificate(
        cluster.secrets.os,
        key_algorithm="ed25519",
        organizations=["os:admin"],
        extended_key_usages=("server_auth", "client_auth"),
        lifetime=timedelta(hours=1),
    )
    credentials = TalosContext(ca=cluster.secrets.os.crt, crt=both.crt, key=both.key)
    with (
        TalosClient(controlplane.address, credentials) as client,
        pytest.raises(TlsIdentityError, match="refused our client certificate"),
    ):
        client.version()
    assert controlplane.listener.rejected_connections == 1
