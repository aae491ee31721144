"""wire: Talos' own API client (machinery's `client.New`) against the lab's Talos node gets what ours gets.

Each case makes the same call with machinery's client (our talosconfig via WithConfig, the node via
WithEndpoints; or maintenance mode's insecure TLS) and with ours, against lab nodes in the same state, and
compares: the values where the call succeeds, the gRPC code and message where the node refuses it, and a TLS
failure where the handshake must fail. This is the check of the lab's wire fidelity: a disagreement means the
lab speaks the Talos API differently from what Talos' client expects.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import yaml
from cryptography import x509
from google.protobuf import empty_pb2
from grpclib.const import Status

from lab.talos.node import TalosNode
from lab.talos.testing import ClusterMaterial, NodeFactory
from talos.api import methods
from talos.api.client import MACHINE_CONFIG, TalosClient
from talos.api.domain import NodeVersion
from talos.api.errors import NodeConfiguredError, TalosApiError, TlsIdentityError
from talos.compare import configs_equal
from talos.talosconfig import TalosConfig, TalosContext
from tests.conformance.oracle import ApiAnswer, ApiCall, Oracle, Target

pytestmark = pytest.mark.oracle

NodeKind = Literal["maintenance", "controlplane", "worker"]
ClientKind = Literal["insecure", "admin", "reader", "stranger"]
"""insecure: no talosconfig (maintenance mode's TLS); stranger: the admin of another cluster."""
Route = Literal["direct", "node", "nodes"]
"""How the endpoint is asked to serve the call: itself, proxied by `node` metadata, or one-to-many `nodes`."""

INVALID_CONFIG = "version: v1alpha1\nmachine:\n    type: router\n"
LABEL_CHANGE = ('exclude-from-external-load-balancers: ""', 'role: "wire"')
"""A change a running node applies at once (node labels)."""
KERNEL_CHANGE = ("diskQuotaSupport: true", "diskQuotaSupport: false")
"""A change that needs a reboot."""


@dataclass(frozen=True)
class Side:
    """One way to reach a node, for both clients: machinery's target, our client and its `node=` routing."""

    target: Target
    client: TalosClient
    node: str | None = None


@pytest.fixture(scope="module")
def stranger(cluster: ClusterMaterial) -> ClusterMaterial:
    """Another cluster: its admin is a stranger to `cluster`'s nodes, and its nodes bootstrap their own etcd."""
    return ClusterMaterial.generate(cluster.endpoint_host, name="stranger")


@pytest.fixture
def start(talos_nodes: NodeFactory, cluster: ClusterMaterial) -> Callable[..., TalosNode]:
    """Start a node of `cluster` (or `material`) in the state `kind`."""

    def start(kind: NodeKind, material: ClusterMaterial = cluster) -> TalosNode:
        if kind == "maintenance":
            return talos_nodes.start()
        if kind == "worker":
            talos_nodes.start(config=material.controlplane)  # a worker's apid certificate comes from its trustd
        return talos_nodes.start(config=material.worker if kind == "worker" else material.controlplane)

    return start


@pytest.fixture
def connect(cluster: ClusterMaterial, stranger: ClusterMaterial) -> Iterator[Callable[..., Side]]:
    """Both clients for `node` as `kind`; ours are closed after the test."""
    with ExitStack() as stack:

        def connect(
            node: TalosNode, kind: ClientKind, material: ClusterMaterial = cluster, *, route: Route = "direct"
        ) -> Side:
            context = {
                "insecure": None,
                "admin": material.admin,
                "reader": material.credentials("os:reader"),
                "stranger": stranger.admin,
            }[kind]
            talosconfig = _talosconfig(context) if context else ""
            target = Target(
                endpoints=(node.address,),
                talosconfig=talosconfig,
                node=node.address if route == "node" else "",
                nodes=(node.address,) if route == "nodes" else (),
            )
            client = stack.enter_context(TalosClient(node.address, context, timeout=10))
            return Side(target, client, node.address if route == "node" else None)

        yield connect


def _talosconfig(context: TalosContext) -> str:
    """Our talosconfig file for one context; its endpoints are the cluster endpoint, not the node."""
    return TalosConfig(context="wire", contexts={"wire": context}).to_yaml()


def ours(client: TalosClient, call: ApiCall, request: dict[str, Any]) -> Any:
    """Our client's call with the request machinery's client gets."""
    if call == "version":
        return client.version()
    if call == "apply":
        mode = request["mode"].lower().replace("_", "-")
        return client.apply_configuration(request["config"], mode=mode, dry_run=request.get("dry_run", False))
    if call == "bootstrap":
        return client.bootstrap()
    if call == "kubeconfig":
        return client.kubeconfig()
    return client.get_resource(*MACHINE_CONFIG, request["id"])


def go_code(status: Status) -> str:
    """A gRPC status as Go names it (`PERMISSION_DENIED` -> `PermissionDenied`)."""
    return "".join(part.capitalize() for part in status.name.split("_"))


DROPPED_AFTER_HANDSHAKE = ("write: broken pipe", "write: connection reset by peer")
"""How Go's gRPC client may report a node refusing it for want of a client certificate (TLS 1.3): the node sends
its `certificate required` alert and closes, and when its reset overtakes the alert the client's first write
after the handshake fails instead. Talos' own server does the same: a Go gRPC server demanding a client
certificate, on loopback, showed it in 45 of 100 connections (the lab in 27 of 100)."""


def assert_same_refusal(theirs: ApiAnswer, caught: TalosApiError, code: str, *, tls: bool = False) -> None:
    """Both refused with `code`; a TLS failure in both handshakes, else the same message from the node."""
    assert (theirs.stage, theirs.code, go_code(caught.status)) == ("call", code, code), theirs.errors
    if not tls:
        assert theirs.errors == (f"rpc error: code = {code} desc = {caught.message}",)
        return
    (message,) = theirs.errors
    dropped = isinstance(caught, NodeConfiguredError) and message.endswith(DROPPED_AFTER_HANDSHAKE)
    assert isinstance(caught, TlsIdentityError) and ("tls:" in message or dropped), (message, caught)


# -- refusals ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A call the node must refuse, with the same gRPC code, in both clients."""

    id: str
    node: NodeKind
    client: ClientKind
    call: ApiCall
    code: str
    """The gRPC code both clients must end with, as Go names it."""
    request: dict[str, Any] = field(default_factory=dict)
    tls: bool = False
    """The TLS handshake fails (both see it as Unavailable)."""


def _changed(config: str, change: tuple[str, str]) -> str:
    assert change[0] in config
    return config.replace(*change)


REFUSALS = [
    Refusal("maintenance-bootstrap", "maintenance", "insecure", "bootstrap", "PermissionDenied"),
    Refusal("maintenance-kubeconfig", "maintenance", "insecure", "kubeconfig", "PermissionDenied"),
    Refusal(
        "maintenance-machine-config",
        "maintenance",
        "insecure",
        "machine-config",
        "PermissionDenied",
        {"id": "v1alpha1"},
    ),
    Refusal(
        "maintenance-invalid-config",
        "maintenance",
        "insecure",
        "apply",
        "InvalidArgument",
        {"config": INVALID_CONFIG, "mode": "REBOOT"},
    ),
    Refusal("maintenance-with-talosconfig", "maintenance", "admin", "version", "Unavailable", tls=True),
    Refusal("configured-without-certificate", "controlplane", "insecure", "version", "Unavailable", tls=True),
    Refusal(
        "configured-apply-without-certificate",
        "controlplane",
        "insecure",
        "apply",
        "Unavailable",
        {"mode": "AUTO"},
        tls=True,
    ),
    Refusal("configured-other-cluster", "controlplane", "stranger", "version", "Unavailable", tls=True),
    Refusal("reader-bootstrap", "controlplane", "reader", "bootstrap", "PermissionDenied"),
    Refusal("reader-kubeconfig", "controlplane", "reader", "kubeconfig", "PermissionDenied"),
    Refusal(
        "reader-machine-config", "controlplane", "reader", "machine-config", "PermissionDenied", {"id": "v1alpha1"}
    ),
    Refusal("reader-apply", "controlplane", "reader", "apply", "PermissionDenied", {"mode": "AUTO"}),
    Refusal("unknown-machine-config", "controlplane", "admin", "machine-config", "NotFound", {"id": "v1alpha2"}),
    Refusal(
        "invalid-config",
        "controlplane",
        "admin",
        "apply",
        "InvalidArgument",
        {"config": INVALID_CONFIG, "mode": "AUTO"},
    ),
    Refusal(
        "no-reboot-needs-reboot",
        "controlplane",
        "admin",
        "apply",
        "InvalidArgument",
        {"change": KERNEL_CHANGE, "mode": "NO_REBOOT"},
    ),
    Refusal("worker-bootstrap", "worker", "admin", "bootstrap", "Unimplemented"),
    Refusal("worker-kubeconfig", "worker", "admin", "kubeconfig", "Unimplemented"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda case: case.id)
def test_refused_call_has_the_same_code_in_both_clients(
    oracle: Oracle,
    start: Callable[..., TalosNode],
    connect: Callable[..., Side],
    cluster: ClusterMaterial,
    case: Refusal,
) -> None:
    node = start(case.node)
    side = connect(node, case.client)
    request = dict(case.request)
    if "mode" in request and "config" not in request:
        config = cluster.worker if case.node == "worker" else cluster.controlplane
        request["config"] = _changed(config, request.pop("change")) if "change" in request else config

    theirs = oracle.api(case.call, side.target, **request)
    with pytest.raises(TalosApiError) as caught:
        ours(side.client, case.call, request)

    assert_same_refusal(theirs, caught.value, case.code, tls=case.tls)


# -- Version ---------------------------------------------------------------------------------------------------

VERSIONS: dict[str, tuple[NodeKind, ClientKind, Route]] = {
    "maintenance": ("maintenance", "insecure", "direct"),
    "admin": ("controlplane", "admin", "direct"),
    "admin-node": ("controlplane", "admin", "node"),
    "admin-nodes": ("controlplane", "admin", "nodes"),
    "reader": ("controlplane", "reader", "direct"),
    "worker": ("worker", "admin", "direct"),
}


@pytest.mark.parametrize("case", VERSIONS, ids=str)
def test_version_is_the_same_in_both_clients(
    oracle: Oracle, start: Callable[..., TalosNode], connect: Callable[..., Side], case: str
) -> None:
    node_kind, client_kind, route = VERSIONS[case]
    node = start(node_kind)
    side = connect(node, client_kind, route=route)

    theirs = oracle.api("version", side.target)
    if route == "nodes":
        reply = side.client.call_nodes(methods.VERSION, empty_pb2.Empty(), [node.address])
        ours_version, hostnames = NodeVersion.from_message(reply[node.address]), list(reply)
    else:
        ours_version, hostnames = side.client.version(node=side.node), [""]

    assert theirs.ok, theirs.errors
    assert theirs.values == {
        "tag": ours_version.tag,
        "sha": ours_version.sha,
        "arch": ours_version.arch,
        "platform": ours_version.platform,
        "platform_mode": ours_version.platform_mode,
        "configured": ours_version.configured,
        "rbac": ours_version.configured,
        "hostnames": hostnames,
    }
    assert (ours_version.tag, ours_version.configured) == (node.version, node_kind != "maintenance")


# -- ApplyConfiguration --------------------------------------------------------------------------------------

MAINTENANCE_MODES = ("REBOOT", "AUTO", "NO_REBOOT", "STAGED")


@pytest.mark.parametrize("mode", MAINTENANCE_MODES, ids=str.lower)
def test_apply_in_maintenance_is_the_same_in_both_clients(
    oracle: Oracle,
    start: Callable[..., TalosNode],
    connect: Callable[..., Side],
    cluster: ClusterMaterial,
    mode: str,
) -> None:
    """Each client configures its own maintenance-mode node; both nodes store exactly the bytes sent."""
    theirs_node, ours_node = start("maintenance"), start("maintenance")

    theirs = oracle.api("apply", connect(theirs_node, "insecure").target, config=cluster.controlplane, mode=mode)
    result = ours(connect(ours_node, "insecure").client, "apply", {"config": cluster.controlplane, "mode": mode})

    assert theirs.ok, theirs.errors
    assert theirs.values == {"mode": _go_mode(result.mode), "mode_details": result.details, **_warnings(result)}
    for node in (theirs_node, ours_node):
        assert node.storage.read_state() == cluster.controlplane.encode()


@dataclass(frozen=True)
class Apply:
    id: str
    mode: str
    change: tuple[str, str] | None = None
    dry_run: bool = False
    twins: bool = False
    """The apply reboots the node: each client gets its own node in the same state."""


CONFIGURED_APPLIES = [
    Apply("auto-unchanged", "AUTO"),
    Apply("no-reboot-unchanged", "NO_REBOOT"),
    Apply("auto-immediate-change", "AUTO", LABEL_CHANGE),
    Apply("no-reboot-immediate-change", "NO_REBOOT", LABEL_CHANGE),
    Apply("auto-change-needing-reboot", "AUTO", KERNEL_CHANGE, twins=True),
    Apply("reboot-immediate-change", "REBOOT", LABEL_CHANGE, twins=True),
    Apply("dry-run-auto-change-needing-reboot", "AUTO", KERNEL_CHANGE, dry_run=True),
    Apply("dry-run-no-reboot-immediate-change", "NO_REBOOT", LABEL_CHANGE, dry_run=True),
    Apply("staged-change-needing-reboot", "STAGED", KERNEL_CHANGE),
]


@pytest.mark.parametrize("case", CONFIGURED_APPLIES, ids=lambda case: case.id)
def test_configured_apply_is_the_same_in_both_clients(
    oracle: Oracle,
    start: Callable[..., TalosNode],
    connect: Callable[..., Side],
    cluster: ClusterMaterial,
    case: Apply,
) -> None:
    """Machinery applies first, then ours the same config (to a twin node when the apply reboots it)."""
    config = _changed(cluster.controlplane, case.change) if case.change else cluster.controlplane
    theirs_node = start("controlplane")
    ours_node = start("controlplane") if case.twins else theirs_node
    request = {"config": config, "mode": case.mode, "dry_run": case.dry_run}

    theirs = oracle.api("apply", connect(theirs_node, "admin").target, **request)
    result = ours(connect(ours_node, "admin").client, "apply", request)

    assert theirs.ok, theirs.errors
    assert theirs.values == {"mode": _go_mode(result.mode), "mode_details": result.details, **_warnings(result)}
    running = cluster.controlplane if case.dry_run or case.mode == "STAGED" else config
    boots = 2 if theirs.values["mode"] == "REBOOT" and not case.dry_run else 1
    for node in {theirs_node, ours_node}:
        node.wait_for(lambda n: n.boots == boots and n.config is not None)
        assert configs_equal(node.config.raw, running)  # type: ignore[union-attr]
        assert configs_equal(node.storage.read_state(), cluster.controlplane if case.dry_run else config)


def _go_mode(mode: str) -> str:
    return mode.upper().replace("-", "_")


def _warnings(result: Any) -> dict[str, list[str]]:
    """Go leaves an empty list out of the answer (omitempty)."""
    return {"warnings": list(result.warnings)} if result.warnings else {}


# -- Bootstrap ---------------------------------------------------------------------------------------------


def test_bootstrap_then_already_exists_in_both_clients(
    oracle: Oracle,
    start: Callable[..., TalosNode],
    connect: Callable[..., Side],
    cluster: ClusterMaterial,
    stranger: ClusterMaterial,
) -> None:
    """Each client bootstraps a node of its own cluster (one etcd each), then asks again."""
    theirs_node, ours_node = start("controlplane"), start("controlplane", stranger)
    theirs_side, ours_side = connect(theirs_node, "admin"), connect(ours_node, "admin", stranger)

    first = oracle.api("bootstrap", theirs_side.target)
    ours(ours_side.client, "bootstrap", {})
    second = oracle.api("bootstrap", theirs_side.target)
    with pytest.raises(TalosApiError) as caught:
        ours(ours_side.client, "bootstrap", {})

    assert first.ok, first.errors
    assert_same_refusal(second, caught.value, "AlreadyExists")
    for node in (theirs_node, ours_node):
        node.wait_for(lambda n: n.ready())


# -- Kubeconfig --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["direct", "node", "nodes"])
def test_kubeconfig_is_for_the_same_cluster_in_both_clients(
    oracle: Oracle,
    start: Callable[..., TalosNode],
    connect: Callable[..., Side],
    cluster: ClusterMaterial,
    route: Route,
) -> None:
    """With `nodes` (talosctl's way, a one-to-many stream) machinery's client is the only one routing: ours
    asks the node directly, as the project does."""
    node = start("controlplane")
    side = connect(node, "admin", route=route)

    theirs = oracle.api("kubeconfig", side.target)
    kubeconfig = side.client.kubeconfig(node=side.node)

    assert theirs.ok, theirs.errors
    facts = _kubeconfig_facts(kubeconfig)
    assert _kubeconfig_facts(theirs.values["kubeconfig"]) == facts
    assert facts["ca"] == cluster.secrets.k8s.crt
    assert facts["server"] == f"https://{cluster.endpoint_host}:6443"


def _kubeconfig_facts(text: str) -> dict[str, Any]:
    """What makes a kubeconfig the cluster's admin one: names, server, CA, and who issued the client certificate
    to whom (the certificate and key themselves are freshly minted per call)."""
    data = yaml.safe_load(text)
    (cluster,), (user,) = data["clusters"], data["users"]
    certificate = x509.load_pem_x509_certificate(base64.b64decode(user["user"]["client-certificate-data"]))
    return {
        "cluster": cluster["name"],
        "server": cluster["cluster"]["server"],
        "ca": base64.b64decode(cluster["cluster"]["certificate-authority-data"]),
        "contexts": data["contexts"],
        "current-context": data["current-context"],
        "user": user["name"],
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
    }


# -- COSI Get of the MachineConfig -------------------------------------------------------------------------

MACHINE_CONFIG_READS: dict[str, tuple[str, Route]] = {
    "active": ("v1alpha1", "direct"),
    "active-via-node": ("v1alpha1", "node"),
    "persistent": ("persistent", "direct"),
}


@pytest.mark.parametrize("case", MACHINE_CONFIG_READS, ids=str)
def test_machine_config_resource_is_the_same_in_both_clients(
    oracle: Oracle,
    start: Callable[..., TalosNode],
    connect: Callable[..., Side],
    cluster: ClusterMaterial,
    case: str,
) -> None:
    id_, route = MACHINE_CONFIG_READS[case]
    node = start("controlplane")
    side = connect(node, "admin", route=route)

    theirs = oracle.api("machine-config", side.target, id=id_)
    resource = side.client.get_resource(*MACHINE_CONFIG, id_, node=side.node)

    assert theirs.ok, theirs.errors
    metadata = resource.metadata
    assert {key: value for key, value in theirs.values.items() if key != "config"} == {
        "namespace": metadata.namespace,
        "type": metadata.type,
        "id": metadata.id,
        "version": metadata.version,
        "phase": metadata.phase,
        "owner": metadata.owner,
        **({"annotations": dict(metadata.annotations)} if metadata.annotations else {}),
        **({"labels": dict(metadata.labels)} if metadata.labels else {}),
    }
    ours_config = side.client.machine_config(persistent=id_ == "persistent", node=side.node)
    assert configs_equal(theirs.values["config"], ours_config)
    assert configs_equal(ours_config, cluster.controlplane)
