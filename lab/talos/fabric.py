"""What lab Talos nodes share: who answers at which address (for apid's node proxying) and each cluster's etcd.

Nodes run on their own threads; everything here is guarded by one lock.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lab.kubernetes import NodeInfo
from lab.kubernetes.objects import PodInfo
from lab.kubernetes.workloads import Workloads
from talos.kubernetes_images import STATIC_PODS
from talos.pki import CertAndKey

if TYPE_CHECKING:
    from lab.talos.machineconfig import MachineConfig
    from lab.talos.node import TalosNode


@dataclass(frozen=True)
class EtcdMemberRecord:
    id: int
    hostname: str
    address: str

    @property
    def peer_url(self) -> str:
        return f"https://{self.address}:2380"

    @property
    def client_url(self) -> str:
        return f"https://{self.address}:2379"


@dataclass
class EtcdCluster:
    """One cluster's etcd membership: the first member is the leader."""

    members: dict[str, EtcdMemberRecord] = field(default_factory=dict)

    @property
    def leader(self) -> int:
        return next(iter(self.members.values())).id if self.members else 0


class Fabric:
    """The lab-wide registry of Talos nodes and etcd clusters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, TalosNode] = {}
        self._clusters: dict[str, EtcdCluster] = {}
        self._workloads: dict[str, Workloads] = {}
        self._bootstrap_calls: Counter[str] = Counter()

    def record_bootstrap_call(self, cluster_id: str) -> None:
        """Count a Bootstrap call a node of the cluster received, refused or not (tests: never sent twice)."""
        with self._lock:
            self._bootstrap_calls[cluster_id] += 1

    def bootstrap_calls(self, cluster_id: str) -> int:
        with self._lock:
            return self._bootstrap_calls[cluster_id]

    def attach(self, node: TalosNode) -> None:
        with self._lock:
            self._nodes[node.address] = node

    def detach(self, node: TalosNode) -> None:
        with self._lock:
            if self._nodes.get(node.address) is node:
                del self._nodes[node.address]

    def node_at(self, address: str) -> TalosNode | None:
        with self._lock:
            return self._nodes.get(address.rsplit(":", 1)[0] if address.count(":") == 1 else address)

    def trustd(self, os_ca: bytes, token: object) -> CertAndKey | None:
        """What a worker's CSR to trustd yields: the OS CA of a serving control plane whose token matches."""
        with self._lock:
            nodes = list(self._nodes.values())
        for node in nodes:
            config = node.config
            if config is None or not node.control_plane or not node.listener.serving:
                continue
            if config.os_ca.crt == os_ca and config.os_ca.key and config.machine.get("token") == token:
                return config.os_ca
        return None

    def kubernetes_nodes(self, cluster_id: str) -> list[NodeInfo]:
        """The nodes a cluster's Kubernetes API lists: every node of the cluster whose kubelet runs (NotReady:
        the lab installs no CNI), and the Node objects that outlive a stopped kubelet until deleted (Workloads). Called
        from the API's threads: reads each node's state without its lock."""
        listed = []
        for node, config in self._running_in(cluster_id):
            role = "control-plane" if config.control_plane else "worker"
            version = node.components.version("kubelet") or config.kubernetes_version
            listed.append(NodeInfo(node.hostname, node.address, role, version, os_image=f"Talos ({node.version})"))
        return self.workloads(cluster_id).registered(listed)

    def _running_in(self, cluster_id: str) -> list[tuple[TalosNode, MachineConfig]]:
        """The cluster's nodes whose services run (their kubelet reports), by address, each with its config."""
        with self._lock:
            nodes = sorted(self._nodes.values(), key=lambda node: node.address)
        running = []
        for node in nodes:
            config = node.config  # read once: the node's loop may change it meanwhile
            if config is not None and node.services_up and config.cluster_id == cluster_id:
                running.append((node, config))
        return running

    def workloads(self, cluster_id: str) -> Workloads:
        """The cluster's Kubernetes objects beyond the nodes' reports (Node objects outliving their kubelet,
        cordons, workload pods), shared by its control planes' APIs."""
        with self._lock:
            return self._workloads.setdefault(cluster_id, Workloads())

    def kubernetes_pods(self, cluster_id: str) -> list[PodInfo]:
        """The control-plane static pods of a cluster's nodes whose kubelet runs, as their mirror pods show them
        (lab.talos.kubernetes_components). Called from the API's threads, like `kubernetes_nodes`."""
        pods = []
        for node, _config in self._running_in(cluster_id):
            for name, component in list(node.components.running.items()):
                if name in STATIC_PODS:
                    version = str(component.running_version)
                    pods.append(
                        PodInfo(name, node.hostname, node.address, component.running_image, version, component.ready)
                    )
        return pods

    def bootstrap(self, cluster_id: str, hostname: str, address: str) -> EtcdMemberRecord:
        """Start a new etcd cluster with this node as its only member."""
        member = _member(cluster_id, hostname, address)
        with self._lock:
            self._clusters[cluster_id] = EtcdCluster({hostname: member})
        return member

    def join(self, cluster_id: str, hostname: str, address: str) -> EtcdMemberRecord | None:
        """Add this node to the cluster's etcd once it has a member; None while nobody bootstrapped it."""
        with self._lock:
            cluster = self._clusters.get(cluster_id)
            if cluster is None or not cluster.members:
                return None
            member = cluster.members.get(hostname) or _member(cluster_id, hostname, address)
            cluster.members[hostname] = member
            return member

    def leave(self, cluster_id: str, hostname: str) -> None:
        with self._lock:
            cluster = self._clusters.get(cluster_id)
            if cluster is not None:
                cluster.members.pop(hostname, None)

    def remove_member(self, cluster_id: str, member_id: int) -> bool:
        with self._lock:
            cluster = self._clusters.get(cluster_id)
            for hostname, member in list(cluster.members.items()) if cluster else []:
                if member.id == member_id:
                    del cluster.members[hostname]  # type: ignore[union-attr]
                    return True
            return False

    def removal_refusal(self, cluster_id: str, member_id: int, *, by: str) -> str | None:
        """Why etcd (strict reconfig check, v3.6 `mayRemoveMember`) refuses to remove `member_id`, asked of the
        member named `by`; None when it allows it. The last voting member cannot be removed; a member that is
        down may always go; removing a running one must leave a quorum of the current members connected."""
        cluster = self.etcd(cluster_id)
        members = list(cluster.members.values())
        if [m.id for m in members] == [member_id]:
            return "etcdserver: re-configuration failed due to not enough started members"
        target = next((m for m in members if m.id == member_id), None)
        if target is None or (target.hostname != by and not self._etcd_running(cluster_id, target)):
            return None
        active = sum(1 for member in members if self._etcd_running(cluster_id, member))
        if active - 1 < 1 + (len(members) - 1) // 2:
            return "etcdserver: unhealthy cluster"
        return None

    def upgrade_refusal(self, cluster_id: str) -> str | None:
        """Why Talos' etcd ValidateForUpgrade refuses an upgrade (without force/preserve); None when it allows
        it: two members would lose quorum while one reboots, and every member must be up and healthy."""
        members = list(self.etcd(cluster_id).members.values())
        if len(members) == 2:
            return f"etcd member count({len(members)}) is insufficient to maintain quorum if upgrade commences"
        for member in members:
            if not self._etcd_running(cluster_id, member):
                return (
                    f"etcd member {member.id:016x} is not healthy; all members must be healthy to perform an "
                    "upgrade: context deadline exceeded"
                )
        return None

    def _etcd_running(self, cluster_id: str, member: EtcdMemberRecord) -> bool:
        """Whether the member's etcd runs: its node is up at its address, in its cluster, with etcd started."""
        node = self.node_at(member.address)
        if node is None or node.config is None or node.config.cluster_id != cluster_id:
            return False
        return node.hostname == member.hostname and node.etcd_state.value in ("starting", "healthy")

    def etcd(self, cluster_id: str) -> EtcdCluster:
        """A snapshot of the cluster's membership."""
        with self._lock:
            cluster = self._clusters.get(cluster_id)
            return EtcdCluster(dict(cluster.members)) if cluster else EtcdCluster()


def _member(cluster_id: str, hostname: str, address: str) -> EtcdMemberRecord:
    digest = hashlib.sha256(f"{cluster_id}/{hostname}".encode()).digest()
    return EtcdMemberRecord(int.from_bytes(digest[:8], "big") or 1, hostname, address)
