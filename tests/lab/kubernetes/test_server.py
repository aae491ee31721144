"""The lab's Kubernetes API through the official `kubernetes` client and plain TLS, as a user meets it."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import urllib3
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from kubernetes import client, config

from lab.kubernetes import KubernetesApi, NodeInfo
from lab.kubernetes.objects import NOT_READY_MESSAGE
from talos.pki import CertAndKey, generate_ca, issue_certificate
from tests.lab.kubernetes.conftest import HOST, VERSION, RunningApi


@contextmanager
def official_client(kubeconfig: str, folder: Path) -> Iterator[client.ApiClient]:
    """An ApiClient configured by the official loader from a kubeconfig file, left unchanged."""
    path = folder / "kubeconfig"
    path.write_text(kubeconfig)
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    with client.ApiClient(configuration) as api_client:
        yield api_client


def with_client_certificate(kubeconfig: str, pair: CertAndKey) -> str:
    """The same kubeconfig with another client certificate in its user."""
    document = yaml.safe_load(kubeconfig)
    document["users"][0]["user"] = {
        "client-certificate-data": base64.b64encode(pair.crt).decode(),
        "client-key-data": base64.b64encode(pair.key).decode(),
    }
    return yaml.safe_dump(document)


def client_certificate(ca: CertAndKey, name: str, *groups: str) -> CertAndKey:
    return issue_certificate(
        ca,
        key_algorithm="ecdsa-p256",
        common_name=name,
        organizations=groups,
        extended_key_usages=("client_auth",),
        lifetime=timedelta(hours=1),
    )


def trusting(ca: CertAndKey) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.crt.decode())


def get_without_certificate(running: RunningApi, path: str) -> tuple[int, dict]:
    endpoint = running.api.endpoint
    connection = http.client.HTTPSConnection(endpoint.host, endpoint.port, context=trusting(running.ca), timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_official_client_lists_the_nodes_not_ready_while_no_cni(running_api: RunningApi, tmp_path: Path) -> None:
    with official_client(running_api.kubeconfig, tmp_path) as api_client:
        nodes = client.CoreV1Api(api_client).list_node()
    assert [node.metadata.name for node in nodes.items] == ["cp-1", "worker-1"]
    control_plane, worker = nodes.items
    assert "node-role.kubernetes.io/control-plane" in control_plane.metadata.labels
    assert "node-role.kubernetes.io/control-plane" not in worker.metadata.labels
    assert worker.metadata.labels["kubernetes.io/hostname"] == "worker-1"
    ready = next(c for c in control_plane.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason, ready.message) == ("False", "KubeletNotReady", NOT_READY_MESSAGE)
    assert [(a.type, a.address) for a in control_plane.status.addresses] == [
        ("InternalIP", "127.0.0.11"),
        ("Hostname", "cp-1"),
    ]
    assert control_plane.status.node_info.kubelet_version == VERSION


def test_official_client_reads_the_version(running_api: RunningApi, tmp_path: Path) -> None:
    with official_client(running_api.kubeconfig, tmp_path) as api_client:
        info = client.VersionApi(api_client).get_code()
    assert (info.major, info.minor, info.git_version) == ("1", "36", VERSION)


def test_node_reported_ready_is_ready_and_keeps_its_creation_time(running_api: RunningApi, tmp_path: Path) -> None:
    with official_client(running_api.kubeconfig, tmp_path) as api_client:
        core = client.CoreV1Api(api_client)
        before = core.read_node("worker-1")
        running_api.nodes[1] = NodeInfo("worker-1", "127.0.0.21", "worker", VERSION, ready=True)
        after = core.read_node("worker-1")
    ready = next(c for c in after.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("True", "KubeletReady")
    assert after.metadata.creation_timestamp == before.metadata.creation_timestamp


def test_missing_node_is_a_not_found_status(running_api: RunningApi, tmp_path: Path) -> None:
    with official_client(running_api.kubeconfig, tmp_path) as api_client, pytest.raises(client.ApiException) as raised:
        client.CoreV1Api(api_client).read_node("nope")
    body = json.loads(raised.value.body)
    assert (raised.value.status, body["reason"], body["message"]) == (404, "NotFound", 'nodes "nope" not found')
    assert body["details"] == {"name": "nope", "kind": "nodes"}


def test_label_selector_lists_only_control_planes(running_api: RunningApi, tmp_path: Path) -> None:
    with official_client(running_api.kubeconfig, tmp_path) as api_client:
        nodes = client.CoreV1Api(api_client).list_node(label_selector="node-role.kubernetes.io/control-plane")
    assert [node.metadata.name for node in nodes.items] == ["cp-1"]


def test_set_based_label_selector_is_a_bad_request(running_api: RunningApi, tmp_path: Path) -> None:
    with official_client(running_api.kubeconfig, tmp_path) as api_client, pytest.raises(client.ApiException) as raised:
        client.CoreV1Api(api_client).list_node(label_selector="kubernetes.io/os in (linux)")
    assert raised.value.status == 400
    assert "equality-based" in json.loads(raised.value.body)["message"]


def test_discovery_documents_parse_in_the_official_models(running_api: RunningApi, tmp_path: Path) -> None:
    with official_client(running_api.kubeconfig, tmp_path) as api_client:
        versions = client.CoreApi(api_client).get_api_versions()
        resources = client.CoreV1Api(api_client).get_api_resources()
        groups = client.ApisApi(api_client).get_api_versions()
    assert versions.versions == ["v1"]
    assert [(r.name, r.kind, r.namespaced) for r in resources.resources] == [("nodes", "Node", False)]
    assert groups.groups == []


def test_unserved_resource_is_a_not_found_status(running_api: RunningApi, tmp_path: Path) -> None:
    with official_client(running_api.kubeconfig, tmp_path) as api_client, pytest.raises(client.ApiException) as raised:
        client.CoreV1Api(api_client).list_namespaced_config_map("default")
    body = json.loads(raised.value.body)
    assert (raised.value.status, body["kind"], body["reason"]) == (404, "Status", "NotFound")


def test_certificate_outside_system_masters_is_forbidden_nodes(running_api: RunningApi, tmp_path: Path) -> None:
    developer = client_certificate(running_api.ca, "alice", "developers")
    kubeconfig = with_client_certificate(running_api.kubeconfig, developer)
    with official_client(kubeconfig, tmp_path) as api_client:
        version = client.VersionApi(api_client).get_code()
        with pytest.raises(client.ApiException) as raised:
            client.CoreV1Api(api_client).list_node()
    body = json.loads(raised.value.body)
    assert version.git_version == VERSION  # public info stays readable, as RBAC's default bindings allow
    assert (raised.value.status, body["kind"], body["reason"]) == (403, "Status", "Forbidden")
    assert body["message"] == (
        'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope'
    )


def test_client_certificate_from_another_ca_is_refused(running_api: RunningApi, tmp_path: Path) -> None:
    stranger = client_certificate(generate_ca("ecdsa-p256", "kubernetes"), "admin", "system:masters")
    kubeconfig = with_client_certificate(running_api.kubeconfig, stranger)
    with (
        official_client(kubeconfig, tmp_path) as api_client,
        pytest.raises(urllib3.exceptions.MaxRetryError, match="UNKNOWN_CA"),  # the server's TLS alert
    ):
        client.CoreV1Api(api_client).list_node()


def test_request_without_client_certificate_is_unauthorized_everywhere(running_api: RunningApi) -> None:
    for path in ("/healthz", "/version", "/api/v1/nodes"):
        status, body = get_without_certificate(running_api, path)
        assert (status, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized"), path


def served_certificate(ca: CertAndKey, port: int, name: str) -> x509.Certificate:
    """The certificate the server presents, verified against `ca` for `name`."""
    with (
        socket.create_connection((HOST, port), timeout=5) as raw,
        trusting(ca).wrap_socket(raw, server_hostname=name) as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")


def test_serving_certificate_verifies_for_the_endpoint_name(k8s_ca: CertAndKey) -> None:
    names = ["api.lab.example", HOST]
    with KubernetesApi(HOST, 0, ca=k8s_ca, server_names=names, nodes=list, version=VERSION) as api:
        served = served_certificate(k8s_ca, api.endpoint.port, "api.lab.example")
        with pytest.raises(ssl.SSLCertVerificationError):
            served_certificate(k8s_ca, api.endpoint.port, "other.lab.example")
    usages = served.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert served.issuer == k8s_ca.certificate().subject


def test_health_endpoints_answer_ok(running_api: RunningApi, tmp_path: Path) -> None:
    with official_client(running_api.kubeconfig, tmp_path) as api_client:
        host = api_client.configuration.host
        answers = [api_client.call_api("GET", host + path).read() for path in ("/healthz", "/livez", "/readyz")]
    assert answers == [b"ok", b"ok", b"ok"]


def test_version_that_is_not_one_is_refused_on_construction(k8s_ca: CertAndKey) -> None:
    with pytest.raises(ValueError, match="not a version like"):
        KubernetesApi(HOST, 0, ca=k8s_ca, server_names=[HOST], nodes=list, version="latest")


def test_writes_are_not_served(running_api: RunningApi, tmp_path: Path) -> None:
    node = client.V1Node(metadata=client.V1ObjectMeta(name="extra"))
    with official_client(running_api.kubeconfig, tmp_path) as api_client, pytest.raises(client.ApiException) as raised:
        client.CoreV1Api(api_client).create_node(node)
    assert (raised.value.status, json.loads(raised.value.body)["reason"]) == (405, "MethodNotAllowed")


def test_stopping_frees_the_port_even_when_never_started(k8s_ca: CertAndKey) -> None:
    idle = KubernetesApi(HOST, 0, ca=k8s_ca, server_names=[HOST], nodes=list, version=VERSION)
    port = idle.endpoint.port
    idle.stop()
    with KubernetesApi(HOST, port, ca=k8s_ca, server_names=[HOST], nodes=list, version=VERSION) as again:
        assert again.endpoint.port == port
