"""Take one node out of its Talos cluster for good, safely, as far as a removal policy says.

`remove_node` runs these steps, each reported as `<node>: <what> (<elapsed>)`:
1. Probe the node: configured (answers with the cluster's mTLS), in maintenance mode (reset already), or
   unreachable (no answer for `timeouts.gone` seconds: powered off, wiped, or gone for good).
2. Control plane: read etcd's live member list from another control plane and refuse, naming the node and the fix,
   when the node is the last member or when removing it would leave fewer running members than the remaining
   cluster's quorum (each member's health is asked through apid, `node` routing). The check is repeated right
   before leaving, under a lock that serialises etcd changes of removals in this process (parallel deletes);
   etcd's own strict reconfiguration check remains the final guard.
3. Cordon and drain through the Kubernetes API (talos.kube_drain) when a kubeconfig is given and the node runs.
4. etcd: EtcdLeaveCluster on the node. Talos' LeaveCluster stops etcd and deletes its data directory, and the
   graceful reset's own `leave` phase is skipped when that directory is gone (v1.13 LeaveEtcd), so the member
   never leaves twice. A member whose node is unreachable or already reset is removed by ID from another control
   plane (EtcdRemoveMemberByID; "not found" means done).
5. Reset per policy: `config` wipes STATE and EPHEMERAL (the node boots back into maintenance mode; the installed
   Talos stays), `system-disk` wipes the whole system disk; `reboot: false` powers the node off instead. The call
   returns at once, so the step waits for the outcome: maintenance mode, or the node down.
6. Delete the Kubernetes Node object (not with reset `none`: the node's kubelet still runs).

Re-running converges: each step first looks whether it is done (not an etcd member any more, Node gone, node in
maintenance). What is safe without the node: a node that stays unreachable is taken out of etcd and Kubernetes
but cannot be reset — it is reported, and the server must be wiped or kept off by whoever owns it (it cannot
rejoin etcd: its member is removed). A node that answers with another cluster's certificate is never touched.
The last control plane is refused, except with reset `none`, which touches nothing and only forgets it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from common.waiting import Deadline, NotYet, Progress, WaitTimeout, format_elapsed, no_progress, wait_until
from talos.api.client import TalosClient
from talos.api.domain import EtcdMember
from talos.api.errors import (
    CallTimeoutError,
    NodeInMaintenanceError,
    NodeUnreachableError,
    NotFoundError,
    TalosApiError,
)
from talos.api.transport import split_endpoint
from talos.api.waiting import ATTEMPT_TIMEOUT, POLL, wait_for_configured, wait_for_maintenance
from talos.errors import TalosError
from talos.kube_drain import KubeCluster, KubeError, cordon, delete_node, drain, find_node
from talos.talosconfig import TalosContext

T = TypeVar("T")
Role = Literal["controlplane", "worker"]
ResetMode = Literal["none", "config", "system-disk"]
NodeState = Literal["configured", "maintenance", "unreachable"]
ROLES: tuple[Role, ...] = ("controlplane", "worker")
RESET_MODES: tuple[ResetMode, ...] = ("none", "config", "system-disk")
CONFIG_PARTITIONS = ("STATE", "EPHEMERAL")
"""What reset `config` wipes: the machine config and the node's data (etcd, kubelet, containers)."""
_DOWN = (NodeUnreachableError, CallTimeoutError)
_ETCD_CHANGES = threading.Lock()
"""Serialises quorum check + leave of the removals running in this process."""


class RemovalError(TalosError):
    """A node could not be removed (safely); names the node, the step, what went wrong and the fix."""

    def __init__(self, node: str, step: str, reason: str, fix: str) -> None:
        super().__init__(f"{node}: {step}: {reason} (fix: {fix})")
        self.node, self.step, self.reason, self.fix = node, step, reason, fix


@dataclass(frozen=True)
class RemovalPolicy:
    """What removing the node does beyond leaving etcd: drain first, how far to reset, reboot or power off."""

    drain: bool = True
    reset: ResetMode = "config"
    reboot: bool = True

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> RemovalPolicy:
        """The policy from `{drain?, reset?, reboot?}`; TalosError naming the field and the fix."""
        value = dict(value or {})
        unknown = sorted(set(value) - {"drain", "reset", "reboot"})
        if unknown:
            raise TalosError(f"policy: unknown key(s) {', '.join(unknown)} (fix: use drain, reset, reboot)")
        for key in ("drain", "reboot"):
            if value.get(key) is not None and not isinstance(value[key], bool):
                raise TalosError(f"policy.{key}: {value[key]!r} is not true or false")
        reset = value.get("reset")
        if reset is not None and reset not in RESET_MODES:
            raise TalosError(f"policy.reset: {reset!r} is not one of {', '.join(RESET_MODES)}")
        return cls(**{key: item for key, item in value.items() if item is not None})

    def to_dict(self) -> dict[str, Any]:
        return {"drain": self.drain, "reset": self.reset, "reboot": self.reboot}


@dataclass(frozen=True)
class RemovalTimeouts:
    """Seconds: the whole removal, the drain within it, and how long no answer means the node is gone."""

    total: float = 1200.0
    drain: float = 300.0
    gone: float = 60.0


@dataclass(frozen=True)
class ClusterNode:
    """A node as the cluster knows it."""

    node: str
    """Its name in progress lines and errors."""
    endpoint: str
    """Its Talos API, `host[:port]`."""
    role: Role
    control_planes: tuple[str, ...]
    """The cluster's control-plane Talos endpoints (this node's own entry is ignored)."""

    @property
    def other_control_planes(self) -> tuple[str, ...]:
        own = split_endpoint(self.endpoint)
        return tuple(cp for cp in self.control_planes if split_endpoint(cp) != own)


@dataclass(frozen=True)
class Membership:
    """How the cluster knows the node, recorded when it joined: its etcd member and its Kubernetes Node."""

    etcd_member_id: int | None = None
    kubernetes_node: str | None = None


@dataclass(frozen=True)
class RemovalResult:
    state: NodeState
    """What the node was when the removal started."""
    done: tuple[str, ...]
    """The steps that changed something, e.g. `left etcd`, `reset (config)`."""
    seconds: float


@dataclass
class _Run:
    """One removal's progress reporting."""

    node: str
    progress: Progress
    start: float = field(default_factory=time.monotonic)

    def report(self, line: str) -> None:
        self.progress(f"{self.node}: {line} ({format_elapsed(time.monotonic() - self.start)})")

    @contextmanager
    def step(self, name: str, fix: str) -> Iterator[None]:
        """Turn the step's API, Kubernetes and waiting errors into a RemovalError naming node, step and fix."""
        try:
            yield
        except (TalosApiError, KubeError, WaitTimeout) as err:
            raise RemovalError(self.node, name, str(err), fix) from None


def confirm_member(
    target: ClusterNode,
    credentials: TalosContext,
    deadline: Deadline,
    *,
    kubeconfig: str | None = None,
    progress: Progress = no_progress,
) -> Membership:
    """Check the node belongs to the cluster (mTLS with its OS CA; a control plane is an etcd member) and record how."""
    run = _Run(target.node, progress)
    with run.step("checking membership", "apply the node's machine config and bootstrap the cluster first"):
        wait_for_configured(target.endpoint, credentials, deadline)
        member_id = None
        if target.role == "controlplane":
            with TalosClient(target.endpoint, credentials) as client:
                member_id = _attempts(client, deadline, lambda: _own_member(client), "etcd membership")
            run.report(f"etcd member {member_id:016x}")
    kubernetes_node = None
    if kubeconfig:
        with run.step("finding the Kubernetes node", "check the kubeconfig and that kube-apiserver answers"):
            kube = KubeCluster.from_kubeconfig(kubeconfig, control_planes=target.control_planes)
            kubernetes_node = find_node(kube, target.endpoint, [target.node])
        run.report(f"Kubernetes node {kubernetes_node}" if kubernetes_node else "not registered in Kubernetes yet")
    return Membership(member_id, kubernetes_node)


def remove_node(
    target: ClusterNode,
    credentials: TalosContext,
    policy: RemovalPolicy,
    *,
    membership: Membership = Membership(),
    kubeconfig: str | None = None,
    timeouts: RemovalTimeouts = RemovalTimeouts(),
    progress: Progress = no_progress,
) -> RemovalResult:
    """Take the node out of the cluster as the module docstring describes; RemovalError names step and fix."""
    run = _Run(target.node, progress)
    deadline = Deadline.after(timeouts.total)
    done: list[str] = []
    state = _probe(target, credentials, deadline.within(timeouts.gone), run)
    run.report(f"node is {state}")
    kube = KubeCluster.from_kubeconfig(kubeconfig, control_planes=target.control_planes) if kubeconfig else None
    etcd = _Etcd(target, credentials, state, membership, run) if target.role == "controlplane" else None
    if etcd is not None and etcd.last_member_left_alone(policy):
        return RemovalResult(state, (), time.monotonic() - run.start)
    if etcd is not None:
        etcd.gate()
    node_name = _kubernetes_node(kube, target, membership, run)
    if kube is not None and node_name and policy.drain and state == "configured":
        _drain(kube, node_name, deadline.within(timeouts.drain), run)
        done.append("drained")
    if etcd is not None and etcd.leave():
        done.append("left etcd")
    if policy.reset != "none" and state == "configured":
        _reset(target, credentials, policy, deadline, run)
        done.append(f"reset ({policy.reset})")
    elif state == "unreachable":
        run.report("not answering: not reset (wipe the server or keep it off; it cannot rejoin etcd)")
    if kube is not None and node_name and policy.reset != "none":
        with run.step("deleting the Kubernetes node", "check that kube-apiserver answers; then run again"):
            if delete_node(kube, node_name):
                done.append("deleted the Kubernetes node")
                run.report(f"Kubernetes node {node_name} deleted")
    run.report("removed: " + (", ".join(done) or "nothing left to do"))
    return RemovalResult(state, tuple(done), time.monotonic() - run.start)


# --- the steps -------------------------------------------------------------------------------------------------


def _probe(target: ClusterNode, credentials: TalosContext, within: Deadline, run: _Run) -> NodeState:
    """configured / maintenance / unreachable (no answer until `within` ends); another cluster's node is refused."""
    fix = "the address now answers for another cluster: check it, and forget this node without touching it if so"
    with run.step("reaching the node", fix), TalosClient(target.endpoint, credentials) as client:

        def check() -> NodeState:
            client.timeout = max(0.1, min(ATTEMPT_TIMEOUT, within.remaining()))
            try:
                client.version()
            except NodeInMaintenanceError:
                return "maintenance"
            except _DOWN as err:
                raise NotYet(err.message) from None
            return "configured"

        try:
            return wait_until(check, within, what="an answer", backoff=POLL, progress=run.report)
        except WaitTimeout:
            return "unreachable"


class _Etcd:
    """The control plane's etcd membership, seen from another control plane; gate and leave."""

    def __init__(
        self, target: ClusterNode, credentials: TalosContext, state: NodeState, membership: Membership, run: _Run
    ) -> None:
        self.target, self.credentials, self.state, self.run = target, credentials, state, run
        self.member_id = membership.etcd_member_id
        self.running = False
        """Whether etcd runs on the node itself (it can then leave by itself)."""
        if state == "configured":
            # etcd not running there (left already, or broken): judged from the member list alone
            with (
                TalosClient(target.endpoint, credentials, timeout=ATTEMPT_TIMEOUT) as client,
                suppress(TalosApiError, NotYet),
            ):
                self.member_id, self.running = _own_member(client), True

    def members(self) -> tuple[str, list[EtcdMember]]:
        """(the control plane that answered, etcd's live member list)."""
        errors = []
        candidates = list(self.target.other_control_planes)
        if self.state == "configured":
            candidates.append(self.target.endpoint)
        for endpoint in candidates:
            try:
                with TalosClient(endpoint, self.credentials, timeout=ATTEMPT_TIMEOUT) as client:
                    return endpoint, client.etcd_members()
            except TalosApiError as err:
                errors.append(str(err))
        raise RemovalError(
            self.target.node,
            "reading etcd's members",
            "no control plane answered: " + ("; ".join(errors) or "the cluster lists no other control plane"),
            "bring a control plane of the cluster up (controlPlanes lists them); then run again",
        )

    def own(self, members: list[EtcdMember]) -> EtcdMember | None:
        """This node's member: by the ID it reported (or had), else by its address in the peer URLs."""
        host = split_endpoint(self.target.endpoint)[0]
        for member in members:
            if member.id == self.member_id:
                return member
        if self.member_id is None:
            return next((m for m in members if any(f"//{host}:" in url for url in m.peer_urls)), None)
        return None

    def last_member_left_alone(self, policy: RemovalPolicy) -> bool:
        """With reset `none`, the last control plane is forgotten untouched (there is nothing it could leave to)."""
        if policy.reset != "none":
            return False
        _endpoint, members = self.members()
        member = self.own(members)
        if member is None or len(members) > 1:
            return False
        self.run.report("last etcd member with reset none: left running as it is, only forgotten")
        return True

    def gate(self) -> None:
        """Refuse when this is the last member or removing it breaks the remaining cluster's quorum."""
        endpoint, members = self.members()
        member = self.own(members)
        if member is None:
            self.run.report("not an etcd member (any more)")
            return
        others = [m for m in members if m.id != member.id]
        fix = "add and bootstrap another control plane first; then run again"
        if not others:
            raise RemovalError(self.target.node, "quorum check", "it is the cluster's last control plane", fix)
        down = self._down(endpoint, others)
        quorum = len(others) // 2 + 1
        if len(others) - len(down) < quorum:
            reason = (
                f"removing it would leave {len(others) - len(down)} of {len(others)} etcd member(s) running, "
                f"below their quorum of {quorum} (down: {', '.join(down)})"
            )
            raise RemovalError(self.target.node, "quorum check", reason, "bring the members named back to health first")
        self.run.report(f"quorum check passed: {len(others) - len(down)} of {len(others)} remaining members up")

    def leave(self) -> bool:
        """Leave etcd (re-checking the gate first, serialised with other removals); False when not a member."""
        with _ETCD_CHANGES:
            self.gate()
            endpoint, members = self.members()
            member = self.own(members)
            if member is None:
                return False
            fix = "act on etcd's reason above; then run again (a node no longer a member skips this step)"
            with self.run.step("leaving etcd", fix):
                if self.running and member.id == self.member_id:
                    with TalosClient(self.target.endpoint, self.credentials) as client:
                        client.etcd_leave_cluster()
                else:
                    with TalosClient(endpoint, self.credentials) as client:
                        try:
                            client.etcd_remove_member(member.id)
                        except NotFoundError:
                            return False
        self.run.report(f"left etcd (member {member.id:016x})")
        return True

    def _down(self, endpoint: str, members: list[EtcdMember]) -> list[str]:
        """The members whose etcd does not answer healthy, asked through `endpoint`'s apid (`node` routing)."""
        down = []
        with TalosClient(endpoint, self.credentials, timeout=ATTEMPT_TIMEOUT) as client:
            for member in members:
                host = _url_host(member.client_urls[0]) if member.client_urls else member.hostname
                try:
                    status = client.etcd_status(node=host)
                except TalosApiError:
                    down.append(member.hostname or host)
                    continue
                if status.member_id != member.id or status.leader == 0 or status.errors:
                    down.append(member.hostname or host)
        return down


def _kubernetes_node(kube: KubeCluster | None, target: ClusterNode, membership: Membership, run: _Run) -> str | None:
    if kube is None:
        return None
    if membership.kubernetes_node:
        return membership.kubernetes_node
    with run.step("finding the Kubernetes node", "check that kube-apiserver answers; then run again"):
        return find_node(kube, target.endpoint, [target.node])


def _drain(kube: KubeCluster, name: str, deadline: Deadline, run: _Run) -> None:
    with run.step("draining", "see the reason; nothing was reset yet, the node is only cordoned"):
        if not cordon(kube, name):
            run.report(f"Kubernetes node {name} is gone: nothing to drain")
            return
        run.report(f"cordoned {name}; evicting its pods")
        evicted = drain(kube, name, deadline, progress=run.report)
    run.report(f"drained ({evicted} pod(s) evicted)")


def _reset(
    target: ClusterNode, credentials: TalosContext, policy: RemovalPolicy, deadline: Deadline, run: _Run
) -> None:
    """Reset gracefully and wait for the outcome: maintenance mode (config + reboot), else the node down."""
    labels = list(CONFIG_PARTITIONS) if policy.reset == "config" else None
    with run.step("reset", "look at the node's console (talosctl dmesg); then run again"):
        with TalosClient(target.endpoint, credentials) as client:
            client.reset(graceful=True, reboot=policy.reboot, wipe_labels=labels)
        run.report(f"resetting ({policy.reset}, then {'reboot' if policy.reboot else 'power off'})")
        if policy.reset == "config" and policy.reboot:
            wait_for_maintenance(target.endpoint, deadline)
            run.report("back in maintenance mode")
        else:
            _wait_down(target.endpoint, credentials, deadline)
            run.report("down")


def _wait_down(endpoint: str, credentials: TalosContext, deadline: Deadline) -> None:
    with TalosClient(endpoint, credentials) as client:

        def down() -> bool:
            client.timeout = max(0.1, min(ATTEMPT_TIMEOUT, deadline.remaining()))
            try:
                client.version()
            except _DOWN:
                return True
            raise NotYet("still answering")

        wait_until(down, deadline, what="the node to go down", backoff=POLL)


def _own_member(client: TalosClient) -> int:
    """The node's etcd member ID, once it is in the member list it sees."""
    member_id = client.etcd_status().member_id
    if member_id not in {member.id for member in client.etcd_members()}:
        raise NotYet("not in etcd's member list yet")
    return member_id


def _attempts(client: TalosClient, deadline: Deadline, call: Callable[[], T], what: str) -> T:
    """`call` until it answers; API errors of a node still starting count as not yet."""

    def attempt() -> T:
        client.timeout = max(0.1, min(ATTEMPT_TIMEOUT, deadline.remaining()))
        try:
            return call()
        except TalosApiError as err:
            raise NotYet(err.message) from None

    return wait_until(attempt, deadline, what=what, backoff=POLL)


def _url_host(url: str) -> str:
    netloc = url.split("//", 1)[-1].split("/", 1)[0]
    return split_endpoint(netloc)[0]
