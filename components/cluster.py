"""TalosCluster: the secrets, every node, the one bootstrap, and the outputs a user needs.

Wiring only. Nodes are independent of each other, so the engine provisions them in parallel; the bootstrap waits
for every node's config. Secret outputs stay secret: `talosconfig`, `kubeconfig`, `secretsYaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_hcloud as hcloud

from components.node import TalosNode, TalosNodeArgs
from components.stack import StackConfig
from providers.cluster_bootstrap import ClusterBootstrap, ClusterBootstrapArgs
from providers.cluster_member import ClusterMember, ClusterMemberArgs
from providers.cluster_roster import ClusterRoster, ClusterRosterArgs
from providers.cluster_secrets import ClusterSecrets, ClusterSecretsArgs
from providers.kubernetes_upgrade import KubernetesUpgrade, KubernetesUpgradeArgs
from providers.talos_upgrade import TalosUpgrade, TalosUpgradeArgs

TYPE = "talos-hetzner:index:TalosCluster"


@dataclass
class TalosClusterArgs:
    stack: StackConfig
    rescue_public_key: pulumi.Input[str] | None = None
    """The rescue SSH key's public line; needed when the stack has Cloud nodes (they are created with it)."""


class TalosCluster(pulumi.ComponentResource):
    """A bootstrapped Talos cluster on Hetzner servers."""

    talosconfig: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    addresses: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: TalosClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        stack = args.stack
        keep = pulumi.ResourceOptions(parent=self, protect=stack.protect)
        self.secrets = ClusterSecrets(f"{name}-secrets", ClusterSecretsArgs(talos_version=stack.talos_version), keep)
        self.ssh_key = self._ssh_key(name, stack, args.rescue_public_key)
        self.zone = self._zone(name, stack)
        self.nodes = {
            spec.name: TalosNode(
                spec.name,
                TalosNodeArgs(spec, stack, self.secrets.secretsYaml, self.ssh_key, self.zone),
                pulumi.ResourceOptions(parent=self),
            )
            for spec in stack.nodes
        }
        members = [
            pulumi.Output.all(spec.name, node.address, spec.role).apply(
                lambda parts: {"name": parts[0], "address": parts[1], "role": parts[2]}
            )
            for spec, node in zip(stack.nodes, self.nodes.values(), strict=True)
        ]
        self.bootstrap = ClusterBootstrap(
            f"{name}-bootstrap",
            ClusterBootstrapArgs(
                cluster_name=stack.cluster_name,
                secrets_yaml=self.secrets.secretsYaml,
                nodes=members,  # type: ignore[arg-type]
                cni=stack.cni,
                trigger=stack.bootstrap_trigger,
                allow_new_etcd=stack.allow_new_etcd,
                timeout=stack.timeouts.get("bootstrap", 1800),
            ),
            pulumi.ResourceOptions(
                parent=self,
                depends_on=[node.config for node in self.nodes.values()],
                protect=stack.protect,
                retain_on_delete=True,
            ),
        )
        self.upgrades = self._upgrades(name, stack)
        self.members = self._members(name, stack)
        self.kubernetes = KubernetesUpgrade(
            f"{name}-kubernetes",
            KubernetesUpgradeArgs(
                cluster_name=stack.cluster_name,
                nodes=members,  # type: ignore[arg-type]
                secrets_yaml=self.secrets.secretsYaml,
                kubeconfig=self.bootstrap.kubeconfig,
                kubernetes_version=stack.kubernetes_version,
                cni=stack.cni,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[self.bootstrap, *self.upgrades.values()]),
        )
        self.roster = self._roster(name, stack)
        self.talosconfig = self.bootstrap.talosconfig
        self.kubeconfig = self.bootstrap.kubeconfig
        self.addresses = pulumi.Output.all(*[node.address for node in self.nodes.values()]).apply(
            lambda found: dict(zip(self.nodes, found, strict=True))
        )
        self.register_outputs(
            {"talosconfig": self.talosconfig, "kubeconfig": self.kubeconfig, "addresses": self.addresses}
        )

    def _upgrades(self, name: str, stack: StackConfig) -> dict[str, TalosUpgrade]:
        """One TalosUpgrade per node, chained after the bootstrap: control planes first, then workers, each after
        the one before, so a version change rolls through the cluster one node at a time."""
        control_planes = pulumi.Output.all(*[self.nodes[spec.name].address for spec in stack.control_planes])
        timeouts = {key: stack.timeouts[key] for key in ("upgrade", "health") if key in stack.timeouts}
        upgrades: dict[str, TalosUpgrade] = {}
        previous: TalosUpgrade | None = None
        for spec in sorted(stack.nodes, key=lambda node: not node.control_plane):
            previous = upgrades[spec.name] = TalosUpgrade(
                f"{name}-{spec.name}-upgrade",
                TalosUpgradeArgs(
                    node=spec.name,
                    address=self.nodes[spec.name].address,
                    secrets_yaml=self.secrets.secretsYaml,
                    talos_version=stack.talos_version,
                    installer_image=stack.installer,
                    control_planes=control_planes,  # type: ignore[arg-type]
                    cni=stack.cni,
                    kubeconfig=self.bootstrap.kubeconfig,
                    timeouts=timeouts or None,
                ),
                pulumi.ResourceOptions(
                    parent=self.nodes[spec.name], depends_on=[self.bootstrap, *([previous] if previous else [])]
                ),
            )
        return upgrades

    def _members(self, name: str, stack: StackConfig) -> dict[str, ClusterMember]:
        """One ClusterMember per node: confirms the node joined and records its etcd member and Kubernetes Node."""
        control_planes = pulumi.Output.all(*[self.nodes[spec.name].address for spec in stack.control_planes])
        return {
            spec.name: ClusterMember(
                f"{name}-{spec.name}-member",
                ClusterMemberArgs(
                    node=spec.name,
                    address=self.nodes[spec.name].address,
                    role=spec.role,
                    secrets_yaml=self.secrets.secretsYaml,
                    control_planes=control_planes,  # type: ignore[arg-type]
                    kubeconfig=self.bootstrap.kubeconfig,
                ),
                pulumi.ResourceOptions(parent=self.nodes[spec.name], depends_on=[self.bootstrap]),
            )
            for spec in stack.nodes
        }

    def _roster(self, name: str, stack: StackConfig) -> ClusterRoster:
        """The cluster's member list: removing a node from the stack drops it from the roster, whose update takes
        the node out of the cluster per the stack's removal policy (drain, etcd leave, reset) before its server is
        let go. Destroying the stack deletes the roster, which touches no node."""
        entries = [
            self._roster_entry(spec.name, spec.role, member)
            for spec, member in zip(stack.nodes, self.members.values(), strict=True)
        ]
        timeouts = {"removal": stack.timeouts["removal"]} if "removal" in stack.timeouts else None
        return ClusterRoster(
            f"{name}-roster",
            ClusterRosterArgs(
                members=entries,  # type: ignore[arg-type]
                secrets_yaml=self.secrets.secretsYaml,
                kubeconfig=self.bootstrap.kubeconfig,
                policy=stack.removal.to_input(),
                delete_cloud_servers=stack.removal.delete_cloud_servers,
                timeouts=timeouts,
            ),
            # after every upgrade: a removal never runs while another node reboots into a new version
            pulumi.ResourceOptions(parent=self, depends_on=[*self.upgrades.values(), self.kubernetes]),
        )

    def _roster_entry(self, node: str, role: str, member: ClusterMember) -> pulumi.Output[dict[str, Any]]:
        """The node's roster entry: its identity, its recorded membership and, for a Cloud node, its server id."""
        server = self.nodes[node].server
        server_id = server.id.apply(int) if server is not None else None
        parts = pulumi.Output.all(self.nodes[node].address, member.etcdMemberId, member.kubernetesNode, server_id)
        return parts.apply(
            lambda found: {
                "node": node,
                "address": found[0],
                "role": role,
                "etcdMemberId": found[1],
                "kubernetesNode": found[2],
                **({"cloudServerId": found[3]} if found[3] is not None else {}),
            }
        )

    def _ssh_key(self, name: str, stack: StackConfig, public_key: pulumi.Input[str] | None) -> hcloud.SshKey | None:
        if public_key is None or not any(spec.cloud for spec in stack.nodes):
            return None  # without rescueSshKey, RescueInstall's check names the fix
        return hcloud.SshKey(
            f"{name}-rescue-key",
            name=f"{stack.cluster_name}-rescue",
            public_key=public_key,
            labels={"cluster": stack.cluster_name},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _zone(self, name: str, stack: StackConfig) -> hcloud.Zone | None:
        if stack.dns is None or not stack.dns.create_zone:
            return None
        return hcloud.Zone(
            f"{name}-zone",
            name=stack.dns.zone,
            mode="primary",
            ttl=stack.dns.ttl,
            opts=pulumi.ResourceOptions(parent=self, protect=stack.protect),
        )
