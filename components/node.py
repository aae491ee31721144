"""TalosNode: one server taken to a configured Talos node, and its DNS values.

(Cloud: the `pulumi_hcloud` server) -> RescueInstall -> TalosMachineConfig -> DnsRecords (the API name's A set for a
control plane; the node's own name when the stack asks; with `dns.ipv6` an AAAA value next to each A value). Wiring
only: no I/O, `apply` only to format values.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_hcloud as hcloud

from components.stack import NodeSpec, PatchSpec, StackConfig
from providers.dns_record import DnsRecord, DnsRecordArgs
from providers.rescue_install import RescueInstall, RescueInstallArgs
from providers.talos_machine_config import TalosMachineConfig, TalosMachineConfigArgs

TYPE = "talos-hetzner:index:TalosNode"
_SELECTOR_FIELDS = {"serial": "serial", "wwn": "wwid", "model": "model"}
"""RescueInstall disk selector fields Talos' machine.install.diskSelector can match too."""
IPV6_GATEWAY = "fe80::1"
"""Hetzner routes a dedicated server's /64 to its link-local address; the gateway is always fe80::1."""


@dataclass
class TalosNodeArgs:
    spec: NodeSpec
    stack: StackConfig
    secrets_yaml: pulumi.Input[str]
    ssh_key: hcloud.SshKey | None = None
    """The rescue key in the Cloud project (Cloud nodes are created with it, so no root password is mailed)."""
    dns_dependency: pulumi.Resource | None = None
    """The zone, when the program creates it."""


class TalosNode(pulumi.ComponentResource):
    """One server as a configured Talos node; `address` is where its Talos API answers."""

    address: pulumi.Output[str]

    def __init__(self, name: str, args: TalosNodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        spec, stack = args.spec, args.stack
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=stack.protect)
        if spec.cloud is not None:
            self.server: hcloud.Server | None = hcloud.Server(
                f"{name}-server",
                name=f"{stack.cluster_name}-{spec.name}",
                server_type=spec.cloud.server_type,
                location=spec.cloud.location,
                image=spec.cloud.image,
                ssh_keys=[args.ssh_key.id] if args.ssh_key else None,
                labels={"cluster": stack.cluster_name, "node": spec.name, "role": spec.role},
                # never deleted by the engine, so `pulumi destroy` keeps it; with `removal.deleteCloudServers` the
                # cluster's ClusterRoster deletes a removed node's server once the node is out of the cluster
                opts=pulumi.ResourceOptions.merge(keep, pulumi.ResourceOptions(retain_on_delete=True)),
            )
            kind, server_id, address = "cloud", self.server.id.apply(int), self.server.ipv4_address
        else:
            self.server = None
            kind, server_id, address = "robot", spec.robot, spec.address
        self.install = RescueInstall(
            f"{name}-install",
            RescueInstallArgs(
                server_kind=kind,
                server_id=server_id,  # type: ignore[arg-type]
                address=address,  # type: ignore[arg-type]
                image=stack.image(),
                disk=dict(spec.disk),
                wipe=spec.wipe,
                reinstall=spec.reinstall,
                node=spec.name,
                timeouts=stack.install_timeouts() or None,
            ),
            pulumi.ResourceOptions.merge(keep, pulumi.ResourceOptions(retain_on_delete=True)),
        )
        selector = {} if _by_id_path(spec) else _talos_selector(spec)
        self.config = TalosMachineConfig(
            f"{name}-config",
            TalosMachineConfigArgs(
                node=spec.name,
                role=spec.role,
                address=self.install.address,  # type: ignore[attr-defined]
                cluster=stack.cluster_options,
                secrets_yaml=args.secrets_yaml,
                patches=node_patches(spec, stack),
                install_disk=_by_id_path(spec),
                install_disk_selector=selector or None,
                machine=pulumi.Output.all(self.install.id, spec.reinstall or "").apply(
                    lambda parts: {"id": parts[0], "reinstall": parts[1]}
                ),
                apply_mode=stack.apply_mode,
                timeout=stack.timeouts.get("configure", 1800),
            ),
            child,
        )
        self.address = self.config.address  # type: ignore[attr-defined]
        self.ipv6: pulumi.Input[str] | None = self.server.ipv6_address if self.server is not None else spec.ipv6
        self.records = self._dns_records(name, spec, stack, args.dns_dependency)
        self.register_outputs({"address": self.address, "role": spec.role, "configSha256": self.config.configSha256})

    def _dns_records(
        self, name: str, spec: NodeSpec, stack: StackConfig, dependency: pulumi.Resource | None
    ) -> list[DnsRecord]:
        """The node's values: in the API name's A set (control planes) and under its own name (if asked); with
        dns.ipv6 also its IPv6 address in the AAAA sets (`<name>-api6`, `<name>-dns6`)."""
        dns = stack.dns
        if dns is None:
            return []
        after = [self.config, *([dependency] if dependency else [])]
        opts = pulumi.ResourceOptions(parent=self, depends_on=after)
        names = ([("api", dns.name)] if spec.control_plane else []) + ([("dns", spec.name)] if dns.node_records else [])
        families = [("", "A", self.address), *([("6", "AAAA", self.ipv6)] if dns.ipv6 and self.ipv6 else [])]
        return [
            DnsRecord(
                f"{name}-{suffix}{family}",
                DnsRecordArgs(zone=dns.zone, name=record, type=kind, value=value, ttl=dns.ttl),
                opts,
            )
            for suffix, record in names
            for family, kind, value in families
        ]


def node_patches(spec: NodeSpec, stack: StackConfig) -> list[dict[str, str]]:
    """The node's patches in the order they apply: cluster, role, the node's own (hostname, network), the node's."""
    own = [_hostname_patch(spec.name)]
    if spec.network is not None and spec.address:
        own.append(_static_network_patch(spec))
    patches = [*stack.patches.get("cluster", ()), *stack.patches.get(spec.role, ()), *own, *spec.patches]
    return [patch.to_input() for patch in patches]


def _hostname_patch(name: str) -> PatchSpec:
    """A fixed hostname: the Kubernetes node name, and what the health check looks for."""
    return PatchSpec(
        f"node {name} hostname", f'apiVersion: v1alpha1\nkind: HostnameConfig\nauto: "off"\nhostname: {name}\n'
    )


def _static_network_patch(spec: NodeSpec) -> PatchSpec:
    """The /32 Hetzner routes to a dedicated server; the gateway (outside the /32) is reached on-link. With an IPv6
    address: that address in its /64, and the default IPv6 route via fe80::1."""
    network = spec.network
    assert network is not None and spec.address is not None
    lines = [
        "apiVersion: v1alpha1",
        "kind: LinkConfig",
        f"name: {network.interface}",
        "addresses:",
        f"    - address: {spec.address}/32",
        *([f"    - address: {spec.ipv6}/64"] if spec.ipv6 else []),
        "routes:",
        f"    - destination: {network.gateway}/32",
        f"    - gateway: {network.gateway}",
        *([f"    - gateway: {IPV6_GATEWAY}"] if spec.ipv6 else []),
    ]
    text = "\n".join(lines) + "\n"
    if network.nameservers:
        servers = "\n".join(f"    - address: {server}" for server in network.nameservers)
        text += f"---\napiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n{servers}\n"
    return PatchSpec(f"node {spec.name} static network", text)


def _by_id_path(spec: NodeSpec) -> str | None:
    """machine.install.disk for a disk chosen by its /dev/disk/by-id name."""
    by_id = spec.disk.get("byId")
    return None if not by_id else str(by_id) if str(by_id).startswith("/") else f"/dev/disk/by-id/{by_id}"


def _talos_selector(spec: NodeSpec) -> dict[str, str]:
    """The node's disk selector as machine.install.diskSelector: the disk RescueInstall wrote to, known from the
    stack alone (an adopted install reports no disk). Without one Talos installs to /dev/sda (Cloud servers)."""
    return {talos: str(spec.disk[ours]) for ours, talos in _SELECTOR_FIELDS.items() if spec.disk.get(ours)}
