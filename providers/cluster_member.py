"""ClusterMember: a node's membership of the bootstrapped cluster, confirmed and recorded.

The program creates one per node after ClusterBootstrap. `create` checks, quickly, that the node is a member (it
answers with the cluster's mTLS; a control plane is in etcd's member list) and records its etcd member ID and its
Kubernetes Node name, which the cluster's ClusterRoster keeps: dropping the node from the roster is what takes it
out of the cluster (providers/cluster_roster.py). `delete` touches nothing, so `pulumi destroy` never resets a node.

No change is ever a replace. A changed `address` (the server got a new IP) or `role`/`node` is an update that
re-reads the membership (read-only); other changes are updates that touch nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from common.waiting import Deadline
from providers.inputs import (
    address_list_problems,
    changed,
    endpoint_problem,
    has_unknown,
    port_problem,
    timeout_problems,
    timeouts_with_defaults,
)
from providers.registration import camel_props, secret_outputs, with_outputs
from providers.talos_machine_config import admin_context, load_bundle, stderr_progress
from talos.errors import TalosError
from talos.kube_drain import KubeCluster
from talos.removal import ROLES, ClusterNode, confirm_member

DEFAULT_TIMEOUTS = {"confirm": 300.0}
"""Seconds: create's membership check."""
TALOS_PORT = 50000
IDENTITY = ("node", "address", "role", "talosPort")
"""Which node this is: a change re-reads its membership (an update, never a replace)."""
OUTPUTS = ("etcdMemberId", "kubernetesNode")
SECRET_OUTPUTS = ["secretsYaml", "kubeconfig"]


@dataclass
class ClusterMemberArgs:
    """Inputs of one node's ClusterMember; every field may be a Pulumi Output."""

    node: str
    """The node's name in progress lines and errors."""
    address: pulumi.Input[str]
    """The node's address; its Talos API answers at `address:talos_port`."""
    role: pulumi.Input[str]
    """`controlplane` or `worker`."""
    secrets_yaml: pulumi.Input[str]
    """The cluster's secrets bundle (talosctl `secrets.yaml`); a secret."""
    control_planes: pulumi.Input[list[str]]
    """The cluster's control-plane addresses: etcd's member list is read through them."""
    kubeconfig: pulumi.Input[str] | None = None
    """An admin kubeconfig (ClusterBootstrap's output); without it, the Kubernetes Node is not looked up. A secret."""
    talos_port: pulumi.Input[int] = TALOS_PORT
    timeouts: pulumi.Input[dict[str, float]] | None = None
    """`{confirm?}` in seconds; see DEFAULT_TIMEOUTS."""


class ClusterMember(Resource, module="talos", name="ClusterMember"):
    """One node's membership of the cluster: confirmed on create, its etcd member and Kubernetes Node recorded."""

    etcdMemberId: pulumi.Output[str]
    """The etcd member ID (decimal), "" for a worker."""
    kubernetesNode: pulumi.Output[str]
    """The Kubernetes Node's name, "" when not known (no kubeconfig)."""

    def __init__(self, name: str, args: ClusterMemberArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = with_outputs(camel_props(args), OUTPUTS)
        super().__init__(ClusterMemberProvider(), name, props, secret_outputs(SECRET_OUTPUTS, opts))


class ClusterMemberProvider(ResourceProvider):
    """check/diff pure and offline; create/update read the membership; delete forgets. No per-call state."""

    serialize_as_secret_always = False  # nothing secret is captured: bundle and kubeconfig arrive as inputs

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [CheckFailure(name, reason) for name, reason in check_inputs(news)])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = [key for key in news if key != "__provider" and key not in OUTPUTS]
        return DiffResult(changes=any(changed(olds.get(key), news.get(key)) for key in keys), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"{props['node']}@{props['address']}", {**props, **membership_outputs(props)})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if not any(changed(olds.get(key), news.get(key)) for key in IDENTITY):
            return UpdateResult({**news, **{key: olds.get(key) or "" for key in OUTPUTS}})
        return UpdateResult({**news, **membership_outputs(news)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Nothing to undo: the ClusterRoster's update removed the node, if it was removed (not destroyed)."""


# --- check: pure and offline ------------------------------------------------------------------------------------


def check_inputs(news: dict[str, Any]) -> list[tuple[str, str]]:
    """(property, reason naming the node and the fix) for every bad input; unknown values are not judged."""
    node = str(news.get("node") or "node")
    known = {key: value for key, value in news.items() if not has_unknown(value)}
    problems: list[tuple[str, str]] = []
    for key, what in (("node", "the node's name"), ("address", "the node's address")):
        if key in known and not _text(known[key]):
            problems.append((key, f"is required: {what}"))
    if _text(known.get("address")) and (reason := endpoint_problem(known["address"])):
        problems.append(("address", reason))
    if "role" in known and known["role"] not in ROLES:
        problems.append(("role", f"{known['role']!r} is not one of {', '.join(ROLES)}"))
    problems += credential_problems(known)
    purpose = "etcd's member list is read through them"
    problems += [("controlPlanes", reason) for reason in address_list_problems(news.get("controlPlanes"), purpose)]
    if reason := port_problem(known.get("talosPort")):
        problems.append(("talosPort", reason))
    problems += [("timeouts", reason) for reason in timeout_problems(known.get("timeouts"), list(DEFAULT_TIMEOUTS))]
    return [(key, f"{node}: {reason}") for key, reason in problems]


def credential_problems(known: dict[str, Any]) -> list[tuple[str, str]]:
    """(property, reason) for a `secretsYaml` that is no bundle and a `kubeconfig` that is no admin kubeconfig."""
    problems: list[tuple[str, str]] = []
    if "secretsYaml" in known:
        try:
            load_bundle(known["secretsYaml"])
        except TalosError as err:
            problems.append(("secretsYaml", str(err)))
    if known.get("kubeconfig"):
        try:
            KubeCluster.from_kubeconfig(str(known["kubeconfig"]))
        except TalosError as err:
            problems.append(("kubeconfig", str(err)))
    return problems


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


# --- create, update, delete: talk to the cluster ----------------------------------------------------------------


def cluster_node(props: dict[str, Any]) -> ClusterNode:
    """The node and its cluster's control planes as Talos API endpoints (`talosPort` where no port is given)."""
    port = int(props.get("talosPort") or TALOS_PORT)
    return ClusterNode(
        node=str(props["node"]),
        endpoint=_with_port(str(props["address"]), port),
        role=props["role"],
        control_planes=tuple(_with_port(str(address), port) for address in props["controlPlanes"]),
    )


def membership_outputs(props: dict[str, Any]) -> dict[str, Any]:
    """Check the node is a member and record how (`etcdMemberId` as a decimal string: uint64 does not fit a float).

    What a node lacks (a worker's etcd member, a Node without a kubeconfig) is "", never null: the engine drops null
    outputs from the state, and a preview then sees them as unknown, which would show the roster as changing."""
    try:
        membership = confirm_member(
            cluster_node(props),
            admin_context(load_bundle(props["secretsYaml"])),
            Deadline.after(timeouts_with_defaults(props, DEFAULT_TIMEOUTS)["confirm"]),
            kubeconfig=props.get("kubeconfig") or None,
            progress=stderr_progress(str(props["node"])),
        )
    except TalosError as err:
        raise RuntimeError(str(err)) from None
    member_id = "" if membership.etcd_member_id is None else str(membership.etcd_member_id)
    return {"etcdMemberId": member_id, "kubernetesNode": membership.kubernetes_node or ""}


def _with_port(address: str, port: int) -> str:
    """`host:port` unless the address names its port already."""
    text = address.strip()
    if text.startswith("[") or (text.count(":") == 1):
        return text
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"
