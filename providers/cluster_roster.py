"""ClusterRoster: the cluster's list of members; dropping a node from it takes the node out of the cluster safely.

The program creates one per cluster, fed by every node's ClusterMember (which confirmed the node joined and recorded
its etcd member ID and Kubernetes Node name). Removing a node from the stack config is an *update* of the roster:
`update` runs talos.removal.remove_node, per `policy`, for every member the old list had and the new one lacks
(workers first, then control planes, one at a time): refuse to remove the last control plane or to break etcd's
quorum, cordon and drain, leave etcd, reset, delete the Node object. The update sees the new inputs, so a policy
changed in the same `up` applies to that removal.

With `deleteCloudServers`, a dropped Cloud node's server is deleted through the Cloud API once the node is out of
the cluster (the program retains every hcloud.Server on delete, so only this removal ever deletes one); the token
comes from stack config (`hcloudToken` or `hcloud:token`) through `configure()`, never from inputs.

`delete` (`pulumi destroy`) touches no node and no server: the cluster keeps running and only leaves the stack. A
provider's delete cannot tell "this node was removed from the stack" from "the whole stack is destroyed"; an update
of one cluster-wide resource can, which is why removal lives here and not in each node's own resource.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from hetzner.cloud import CloudClient
from hetzner.errors import HetznerError
from providers.cluster_member import cluster_node, credential_problems
from providers.inputs import (
    changed,
    endpoint_problem,
    has_unknown,
    port_problem,
    timeout_problems,
    timeouts_with_defaults,
)
from providers.registration import camel_props, secret_outputs
from providers.rescue_install import Credentials
from providers.talos_machine_config import admin_context, load_bundle, stderr_progress
from talos.errors import TalosError
from talos.removal import ROLES, Membership, RemovalPolicy, RemovalTimeouts, remove_node

DEFAULT_TIMEOUTS = {"removal": 1200.0, "drain": 300.0, "gone": 60.0}
"""Seconds, per removed node: the whole removal; its drain; no answer for this long means the node is gone."""
SECRET_OUTPUTS = ["secretsYaml", "kubeconfig"]


@dataclass
class ClusterRosterArgs:
    """Inputs of a cluster's roster; every field may be a Pulumi Output."""

    members: pulumi.Input[list[dict[str, Any]]]
    """`[{node, address, role, etcdMemberId?, kubernetesNode?, cloudServerId?}]`: each ClusterMember's identity and
    record, and a Cloud node's server id."""
    secrets_yaml: pulumi.Input[str]
    """The cluster's secrets bundle (talosctl `secrets.yaml`); a secret."""
    kubeconfig: pulumi.Input[str] | None = None
    """An admin kubeconfig (ClusterBootstrap's output); without it, no drain and no Node deletion. A secret."""
    policy: pulumi.Input[dict[str, Any]] | None = None
    """`{drain: true, reset: "none" | "config" | "system-disk" (default "config"), reboot: true}`."""
    delete_cloud_servers: pulumi.Input[bool] = False
    """Delete a dropped Cloud node's server once the node is out of the cluster (its disk is lost)."""
    talos_port: pulumi.Input[int] | None = None
    timeouts: pulumi.Input[dict[str, float]] | None = None
    """`{removal?, drain?, gone?}` in seconds; see DEFAULT_TIMEOUTS."""


class ClusterRoster(Resource, module="talos", name="ClusterRoster"):
    """The cluster's members; a member dropped from the list is removed from the cluster per `policy`."""

    members: pulumi.Output[list[dict[str, Any]]]
    policy: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: ClusterRosterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ClusterRosterProvider(), name, camel_props(args), secret_outputs(SECRET_OUTPUTS, opts))


class ClusterRosterProvider(ResourceProvider):
    """check/diff pure and offline; create records; update removes dropped members; delete forgets."""

    serialize_as_secret_always = False  # bundle and kubeconfig arrive as inputs, the token through configure()
    credentials: Credentials = Credentials()

    def configure(self, req: ConfigureRequest) -> None:
        self.credentials = Credentials.from_config(req.config)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        problems = check_inputs(news)
        if news.get("deleteCloudServers") is True and not self.credentials.cloud_token:
            fix = "pulumi config set --secret hcloudToken <a read & write Cloud token>, or set hcloud:token"
            problems.append(("deleteCloudServers", f"needs the Cloud API token in the stack config (fix: {fix})"))
        failures = [CheckFailure(name, reason) for name, reason in problems]
        if not failures and not has_unknown(news.get("policy")):
            news = {**news, "policy": RemovalPolicy.from_dict(news.get("policy")).to_dict()}  # the whole policy
        if not failures and not has_unknown(news.get("members")):
            news = {**news, "members": sorted(news["members"], key=lambda m: m["node"])}  # order means nothing
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = [key for key in {*olds, *news} if key != "__provider"]
        return DiffResult(changes=any(changed(olds.get(key), news.get(key)) for key in keys), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("roster", props)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Remove, one at a time, every member the old list had and the new one lacks."""
        staying = {member["node"] for member in news["members"]}
        dropped = [member for member in olds["members"] if member["node"] not in staying]
        control_planes = [member["address"] for member in olds["members"] if member["role"] == "controlplane"]
        for member in sorted(dropped, key=lambda m: m["role"] == "controlplane"):
            _remove(member, control_planes, news)
            if news.get("deleteCloudServers") and member.get("cloudServerId"):
                self._delete_server(member)
        return UpdateResult(news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        names = ", ".join(member["node"] for member in props.get("members") or [])
        print(f"roster: forgotten ({names}); every node keeps running: destroy never resets a node", file=sys.stderr)

    def _delete_server(self, member: dict[str, Any]) -> None:
        progress = stderr_progress(str(member["node"]))
        server_id = int(member["cloudServerId"])
        token, endpoint = self.credentials.cloud_token, self.credentials.cloud_endpoint
        try:
            gone = not CloudClient(token or "", endpoint=endpoint).delete_server(server_id)
        except HetznerError as err:
            raise RuntimeError(f"{member['node']}: deleting Cloud server {server_id}: {err}") from None
        progress(f"Cloud server {server_id} " + ("was gone already" if gone else "deleted (deleteCloudServers)"))


def _remove(member: dict[str, Any], control_planes: list[str], props: dict[str, Any]) -> None:
    """Take one member out of the cluster per the policy in `props` (talos.removal)."""
    timeouts = timeouts_with_defaults(props, DEFAULT_TIMEOUTS)
    recorded = member.get("etcdMemberId")
    node = {**member, "controlPlanes": control_planes, "talosPort": props.get("talosPort")}
    try:
        remove_node(
            cluster_node(node),
            admin_context(load_bundle(props["secretsYaml"])),
            RemovalPolicy.from_dict(props.get("policy")),
            membership=Membership(int(recorded) if recorded else None, member.get("kubernetesNode") or None),
            kubeconfig=props.get("kubeconfig") or None,
            timeouts=RemovalTimeouts(timeouts["removal"], timeouts["drain"], timeouts["gone"]),
            progress=stderr_progress(str(member["node"])),
        )
    except TalosError as err:
        escape = (
            "to forget every dropped node without touching any: `pulumi state delete` the ClusterRoster (its URN: "
            "`pulumi stack --show-urns`), then `pulumi up` creates it anew from the remaining nodes"
        )
        raise RuntimeError(f"{err} ({escape})") from None


# --- check: pure and offline ------------------------------------------------------------------------------------


def check_inputs(news: dict[str, Any]) -> list[tuple[str, str]]:
    """(property, reason with the fix) for every bad input; unknown values are not judged."""
    known = {key: value for key, value in news.items() if not has_unknown(value)}
    problems = [("members", reason) for reason in member_problems(news.get("members"))]
    problems += credential_problems(known)
    if "policy" in known:
        try:
            RemovalPolicy.from_dict(known["policy"])
        except TalosError as err:
            problems.append(("policy", str(err)))
    if reason := port_problem(known.get("talosPort")):
        problems.append(("talosPort", reason))
    if known.get("deleteCloudServers") not in (None, True, False):
        problems.append(("deleteCloudServers", f"{known['deleteCloudServers']!r} is not true or false"))
    problems += [("timeouts", reason) for reason in timeout_problems(known.get("timeouts"), list(DEFAULT_TIMEOUTS))]
    return problems


def member_problems(members: Any) -> list[str]:
    """Why `members` is not a list of distinct `{node, address, role}` entries, with the fix; [] when it is."""
    if has_unknown(members):
        return []
    if not isinstance(members, list) or not members:
        return ["must list the cluster's nodes as [{node, address, role}] (fix: pass every node's ClusterMember)"]
    problems: list[str] = []
    seen: set[str] = set()
    for number, member in enumerate(members, 1):
        if not isinstance(member, dict):
            problems.append(f"entry {number}: must be {{node, address, role}}, not {member!r}")
            continue
        name = member.get("node")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"entry {number}: node is required (the node's name)")
        elif name in seen:
            problems.append(f"entry {number}: node {name!r} is listed twice (fix: give each node its own name)")
        else:
            seen.add(name)
        if not has_unknown(member.get("address")) and (reason := endpoint_problem(member.get("address"))):
            problems.append(f"entry {number}: address {reason}")
        if member.get("role") not in ROLES:
            problems.append(f"entry {number}: role {member.get('role')!r} is not one of {', '.join(ROLES)}")
        server_id = member.get("cloudServerId")
        if server_id is not None and not (isinstance(server_id, int | float) and float(server_id).is_integer()):
            problems.append(f"entry {number}: cloudServerId {server_id!r} is not a Cloud server id")
    return problems
