"""The stack config as a validated model: what `pulumi config` holds, checked before any resource is declared.

`StackConfig.parse(values)` takes the project's config values (`key -> value`, without the project prefix; objects
and arrays as Pulumi hands them to a program: parsed, or as JSON text) and returns the model, or raises
StackConfigError listing every problem with its key path and the fix. The engine checks the declared types
(Pulumi.yaml); this adds what a schema cannot say: unknown keys (with the closest known one), the shape of each
node, Robot vs Cloud, duplicate names and addresses, patches that do not load, secrets stored in plain text.
`read_stack_config()` reads the running stack's config.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from talos.config import CNIS, ROLES, Role
from talos.documents import dump_documents
from talos.errors import TalosError
from talos.patches import load_patch
from talos.versions import installer_image

PROJECT_DIR = Path(__file__).resolve().parents[1]
ROBOT_URL = "https://robot-ws.your-server.de"
SECRET_KEYS = ("secretsBundle", "robotPassword", "rescueSshKey", "hcloud:token")
"""Stack secrets the program reads but never declares (Pulumi.yaml): each must be set with --secret."""
APPLY_MODES = ("auto", "no-reboot", "reboot", "staged", "staged-if-needing-reboot")
WIPE_POLICIES = ("refuse", "talos", "any")
TIMEOUTS = ("rescue", "install", "boot", "resetAttempts", "configure", "bootstrap", "upgrade", "health", "removal")
RESETS = ("none", "config", "system-disk")
"""What removing a node from the stack resets on it: nothing, its config (back to maintenance), its system disk."""
_NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class StackConfigError(ValueError):
    """The stack config cannot make a cluster; lists every problem as `key: what (fix: ...)`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"the stack config has {len(self.problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class PatchSpec:
    """One machine config patch: where it came from (named in errors) and its YAML or JSON text."""

    source: str
    text: str

    def to_input(self) -> dict[str, str]:
        return {"source": self.source, "patch": self.text}


@dataclass(frozen=True)
class CloudServer:
    """A Hetzner Cloud server the program creates for a node."""

    server_type: str
    location: str
    image: str = "debian-12"
    """The OS it is created with; Talos replaces it from the rescue system."""


@dataclass(frozen=True)
class StaticNetwork:
    """The /32 network Hetzner routes to a dedicated server, with its gateway reached by an on-link route."""

    interface: str
    gateway: str
    nameservers: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: Role
    robot: int | None = None
    """The Robot server number of a dedicated server."""
    cloud: CloudServer | None = None
    address: str | None = None
    """The main IPv4 address of a dedicated server (a Cloud server's comes from the API)."""
    ipv6: str | None = None
    """An IPv6 address of a dedicated server's /64 (e.g. its ::1), put on the link with the static network; a Cloud
    server's comes from the API."""
    disk: Mapping[str, Any] = field(default_factory=dict)
    wipe: str = "refuse"
    reinstall: str | None = None
    network: StaticNetwork | None = None
    patches: tuple[PatchSpec, ...] = ()

    @property
    def kind(self) -> Literal["robot", "cloud"]:
        return "robot" if self.robot is not None else "cloud"

    @property
    def control_plane(self) -> bool:
        return self.role == "controlplane"


@dataclass(frozen=True)
class DnsSpec:
    """Records for the API endpoint (one A value per control plane) and, optionally, one per node."""

    zone: str
    name: str = "api"
    ttl: int = 60
    create_zone: bool = False
    """Create the zone in the Cloud project (the lab); otherwise it must exist."""
    node_records: bool = True
    ipv6: bool = False
    """Publish an AAAA value next to each A value: a dedicated node's `ipv6`, a Cloud server's IPv6 address."""

    @property
    def api_fqdn(self) -> str:
        return self.zone if self.name == "@" else f"{self.name}.{self.zone}"


@dataclass(frozen=True)
class RemovalPolicy:
    """What happens to a node removed from the stack config (the server itself stays unless asked)."""

    drain: bool = True
    """Cordon and drain its Kubernetes node first (with the cluster's kubeconfig)."""
    reset: str = "config"
    """See RESETS; a control plane leaves etcd in every case."""
    reboot: bool = True
    """After a reset: reboot (into maintenance mode) rather than power off."""
    delete_cloud_servers: bool = False
    """Delete a removed Cloud node's server (its disk is lost); by default it is kept for the user to delete."""

    def to_input(self) -> dict[str, Any]:
        return {"drain": self.drain, "reset": self.reset, "reboot": self.reboot}


@dataclass(frozen=True)
class StackConfig:
    cluster_name: str
    endpoint: str
    nodes: tuple[NodeSpec, ...]
    talos_version: str = "v1.13.9"
    kubernetes_version: str = "1.36.3"
    installer_image: str | None = None
    schematic: str | None = None
    factory_url: str | None = None
    cni: str = "none"
    kube_proxy: bool = True
    allow_scheduling_on_control_planes: bool = False
    patches: Mapping[str, tuple[PatchSpec, ...]] = field(default_factory=dict)
    """`cluster`, `controlplane` and `worker` patches, in the order they apply."""
    dns: DnsSpec | None = None
    apply_mode: str = "auto"
    bootstrap_trigger: str = "1"
    allow_new_etcd: bool = False
    """Bootstrap a new etcd although the cluster's bootstrap marker says one existed (all etcd data lost)."""
    protect: bool = False
    removal: RemovalPolicy = field(default_factory=RemovalPolicy)
    timeouts: Mapping[str, float] = field(default_factory=dict)
    robot_user: str = ""
    robot_url: str = ROBOT_URL

    @classmethod
    def parse(cls, values: Mapping[str, Any], *, base_dir: Path = PROJECT_DIR) -> StackConfig:
        """The model from config values; StackConfigError with every problem otherwise."""
        return _Reader(values, base_dir).stack()

    @property
    def control_planes(self) -> tuple[NodeSpec, ...]:
        return tuple(node for node in self.nodes if node.control_plane)

    @property
    def cluster_options(self) -> dict[str, Any]:
        """The `cluster` input of TalosMachineConfig."""
        sans = [self.dns.api_fqdn] if self.dns else []
        options: dict[str, Any] = {
            "clusterName": self.cluster_name,
            "endpoint": self.endpoint,
            "talosVersion": self.talos_version,
            "kubernetesVersion": self.kubernetes_version,
            "installerImage": self.installer,
            "cni": self.cni,
            "kubeProxy": self.kube_proxy,
            "allowSchedulingOnControlPlanes": self.allow_scheduling_on_control_planes,
            "additionalSans": sans,
        }
        return {key: value for key, value in options.items() if value is not None}

    @property
    def installer(self) -> str:
        """The installer image every node installs and upgrades with: the one asked for, or the one that installs
        the disk image's schematic (Image Factory) at the stack's version, so an upgrade keeps the schematic."""
        return self.installer_image or installer_image(self.talos_version, self.schematic)

    def image(self) -> dict[str, str]:
        """The RescueInstall image input (Image Factory schematic and version)."""
        image = {"version": self.talos_version, "schematic": self.schematic, "factoryUrl": self.factory_url}
        return {key: value for key, value in image.items() if value}

    def install_timeouts(self) -> dict[str, float]:
        return {
            key: value for key, value in self.timeouts.items() if key in ("rescue", "install", "boot", "resetAttempts")
        }


# --- reading ---------------------------------------------------------------------------------------------------

_DECLARED = (
    "clusterName",
    "endpoint",
    "talosVersion",
    "kubernetesVersion",
    "installerImage",
    "image",
    "cni",
    "kubeProxy",
    "allowSchedulingOnControlPlanes",
    "patches",
    "nodes",
    "dns",
    "cloud",
    "applyMode",
    "bootstrapTrigger",
    "allowNewEtcd",
    "protect",
    "removal",
    "timeouts",
    "robotUser",
    "robotUrl",
)
DECLARED_KEYS = frozenset(_DECLARED)
"""Keys Pulumi.yaml declares (tests check the two agree)."""
_NODE_KEYS = ("name", "role", "robot", "cloud", "address", "ipv6", "disk", "wipe", "reinstall", "network", "patches")
_CLOUD_KEYS = ("serverType", "location", "image")
_DNS_KEYS = ("zone", "name", "ttl", "createZone", "nodeRecords", "ipv6")
_DISK_KEYS = ("wwn", "serial", "model", "minSize", "maxSize", "byId")
_NETWORK_KEYS = ("interface", "gateway", "nameservers")
_PATCH_GROUPS = ("cluster", "controlplane", "worker")
_REMOVAL_KEYS = ("drain", "reset", "reboot", "deleteCloudServers")


class _Reader:
    """Collects problems while reading, so the user sees all of them at once."""

    def __init__(self, values: Mapping[str, Any], base_dir: Path) -> None:
        self.values, self.base_dir = dict(values), base_dir
        self.problems: list[str] = []

    def problem(self, key: str, what: str, fix: str) -> None:
        self.problems.append(f"{key}: {what} (fix: {fix})")

    def stack(self) -> StackConfig:
        self._unknown_keys(self.values, "", _DECLARED + SECRET_KEYS)
        cloud_defaults = self._object("cloud", self.values.get("cloud"), _CLOUD_KEYS)
        nodes = self._nodes(cloud_defaults)
        image = self._object("image", self.values.get("image"), ("schematic", "factoryUrl"))
        config = StackConfig(
            cluster_name=self._text("clusterName", required=True, check=_cluster_name),
            endpoint=self._text("endpoint", required=True, check=_endpoint),
            nodes=nodes,
            talos_version=self._text("talosVersion", default="v1.13.9"),
            kubernetes_version=self._text("kubernetesVersion", default="1.36.3"),
            installer_image=self._text("installerImage") or None,
            schematic=_string(image.get("schematic")) or None,
            factory_url=_string(image.get("factoryUrl")) or None,
            cni=self._choice("cni", CNIS, "none"),
            kube_proxy=self._flag("kubeProxy", True),
            allow_scheduling_on_control_planes=self._flag("allowSchedulingOnControlPlanes", False),
            patches=self._patch_groups(),
            dns=self._dns(),
            apply_mode=self._choice("applyMode", APPLY_MODES, "auto"),
            bootstrap_trigger=self._text("bootstrapTrigger", default="1"),
            allow_new_etcd=self._flag("allowNewEtcd", False),
            protect=self._flag("protect", False),
            removal=self._removal(),
            timeouts=self._timeouts(),
            robot_user=self._text("robotUser"),
            robot_url=self._text("robotUrl", default=ROBOT_URL),
        )
        if any(node.kind == "robot" for node in nodes) and not config.robot_user:
            self.problem("robotUser", "is required for dedicated servers", "pulumi config set robotUser '#ws+...'")
        self._published_ipv6(config)
        if self.problems:
            raise StackConfigError(self.problems)
        return config

    # -- scalars -------------------------------------------------------------------------------------------------

    def _text(
        self,
        key: str,
        *,
        required: bool = False,
        default: str = "",
        check: Callable[[str], tuple[str, str] | None] | None = None,
    ) -> str:
        value = self.values.get(key)
        if value is None or value == "":
            if required:
                self.problem(key, "is not set", f"pulumi config set {key} ...")
            return default
        if not isinstance(value, str):
            self.problem(key, f"must be a string, not {_kind(value)}", f"pulumi config set {key} '<text>'")
            return default
        reason = check(value) if check else None
        if reason:
            self.problem(key, reason[0], reason[1])
        return value

    def _flag(self, key: str, default: bool) -> bool:
        return self._flag_in(key, self.values.get(key, default), default, f"pulumi config set {key} true")

    def _flag_in(self, key: str, value: Any, default: bool, fix: str) -> bool:
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, not {value!r}", fix)
            return default
        return value

    def _choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.values.get(key) or default
        if value not in choices:
            self.problem(key, f"{value!r} is not one of {', '.join(choices)}", f"pulumi config set {key} {default}")
            return default
        return str(value)

    # -- structures ----------------------------------------------------------------------------------------------

    def _object(self, key: str, value: Any, keys: Sequence[str]) -> dict[str, Any]:
        value = _decoded(value)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(key, f"must be an object, not {_kind(value)}", f"set it as {{{', '.join(keys)}}}")
            return {}
        self._unknown_keys(value, f"{key}.", keys)
        return value

    def _unknown_keys(self, value: Mapping[str, Any], prefix: str, known: Sequence[str]) -> None:
        for name in value:
            if name in known:
                continue
            close = difflib.get_close_matches(name, known, n=1)
            fix = f"did you mean {prefix}{close[0]}?" if close else f"use one of {', '.join(known)}"
            self.problem(f"{prefix}{name}", "is not a setting this program knows", fix)

    def _nodes(self, cloud_defaults: dict[str, Any]) -> tuple[NodeSpec, ...]:
        raw = _decoded(self.values.get("nodes"))
        if not isinstance(raw, list) or not raw:
            self.problem("nodes", "must list the cluster's servers", "see Pulumi.prod.yaml for an example")
            return ()
        nodes = tuple(self._node(f"nodes[{i}]", item, cloud_defaults) for i, item in enumerate(raw))
        nodes = tuple(node for node in nodes if node is not None)
        self._unique("name", [(n.name, n.name) for n in nodes])
        self._unique("robot", [(n.name, str(n.robot)) for n in nodes if n.robot is not None])
        self._unique("address", [(n.name, n.address) for n in nodes if n.address])
        self._unique("ipv6", [(n.name, n.ipv6) for n in nodes if n.ipv6])
        if nodes and not any(node.control_plane for node in nodes):
            self.problem("nodes", "has no control plane", "give at least one node role: controlplane")
        return nodes

    def _unique(self, what: str, pairs: list[tuple[str, str]]) -> None:
        seen: dict[str, str] = {}
        for name, value in pairs:
            if value in seen:
                self.problem(f"nodes.{name}", f"{what} {value} is used by {seen[value]} too", "give each node its own")
            seen.setdefault(value, name)

    def _node(self, key: str, item: Any, cloud_defaults: dict[str, Any]) -> NodeSpec | None:
        if not isinstance(item, dict):
            self.problem(key, f"must be an object, not {_kind(item)}", "write {name, role, robot|cloud, ...}")
            return None
        self._unknown_keys(item, f"{key}.", _NODE_KEYS)
        name = item.get("name")
        if not (isinstance(name, str) and _NODE_NAME.match(name)):
            self.problem(f"{key}.name", f"{name!r} is not a node name", "use lowercase letters, digits and -")
            return None
        key = f"nodes.{name}"
        role = item.get("role")
        if role not in ROLES:
            self.problem(
                f"{key}.role", f"{role!r} is not one of {', '.join(ROLES)}", "set role: controlplane or worker"
            )
            role = "worker"
        robot, cloud = item.get("robot"), item.get("cloud")
        if (robot is None) == (cloud is None):
            self.problem(
                key, "needs exactly one of robot (a server number) and cloud", "set robot: 2100001 or cloud: {}"
            )
        server = None
        if robot is not None:
            robot = self._robot(key, item)
        elif cloud is not None:
            server = self._cloud(key, cloud, cloud_defaults)
        network = self._network(key, item.get("network"), robot is not None)
        disk = self._object(f"{key}.disk", item.get("disk"), _DISK_KEYS)
        if robot is not None and not {"wwn", "serial", "model", "byId"} & set(disk):
            fix = "name it by serial or wwn (lsblk -o NAME,SERIAL,WWN in the rescue system), model or byId"
            self.problem(f"{key}.disk", "a dedicated server needs its install disk named", fix)
        return NodeSpec(
            name=name,
            role=role,
            robot=robot,
            cloud=server,
            address=item.get("address") if robot is not None else None,
            ipv6=self._node_ipv6(key, item.get("ipv6"), robot is not None, network),
            disk=disk,
            wipe=self._node_choice(f"{key}.wipe", item.get("wipe"), WIPE_POLICIES, "refuse"),
            reinstall=_string(item.get("reinstall")) or None,
            network=network,
            patches=self._patches(f"{key}.patches", item.get("patches"), f"node {name}"),
        )

    def _robot(self, key: str, item: dict[str, Any]) -> int | None:
        robot = item.get("robot")
        if isinstance(robot, str) and robot.isdigit():
            robot = int(robot)
        if not (isinstance(robot, int) and not isinstance(robot, bool) and robot > 0):
            self.problem(f"{key}.robot", f"{robot!r} is not a Robot server number", "copy it from Robot, e.g. 2100001")
            return None
        address = item.get("address")
        if not _ipv4(address):
            self.problem(f"{key}.address", f"{address!r} is not an IPv4 address", "give the server's main IPv4")
        return robot

    def _cloud(self, key: str, value: Any, defaults: dict[str, Any]) -> CloudServer | None:
        merged = {**defaults, **self._object(f"{key}.cloud", value, _CLOUD_KEYS)}
        missing = [name for name in ("serverType", "location") if not merged.get(name)]
        if missing:
            fix = f"set {', '.join(missing)} here or in the stack's cloud defaults"
            self.problem(f"{key}.cloud", f"needs {' and '.join(missing)}", fix)
            return None
        return CloudServer(str(merged["serverType"]), str(merged["location"]), str(merged.get("image") or "debian-12"))

    def _network(self, key: str, value: Any, robot: bool) -> StaticNetwork | None:
        network = self._object(f"{key}.network", value, _NETWORK_KEYS)
        if not network:
            return None
        if not robot:
            self.problem(f"{key}.network", "static /32 networking is for dedicated servers", "drop network here")
            return None
        interface, gateway = network.get("interface"), network.get("gateway")
        if not (isinstance(interface, str) and interface):
            self.problem(f"{key}.network.interface", "is required", "name the link, e.g. enp0s31f6 or eth0")
        if not _ipv4(gateway):
            self.problem(f"{key}.network.gateway", f"{gateway!r} is not an IPv4 address", "copy it from Robot")
        servers = network.get("nameservers") or []
        if not (isinstance(servers, list) and all(_ipv4(s) or _ipv6(s) for s in servers)):
            self.problem(f"{key}.network.nameservers", "must list IP addresses", "e.g. [185.12.64.1, 185.12.64.2]")
            servers = []
        return StaticNetwork(str(interface), str(gateway), tuple(servers))

    def _node_ipv6(self, key: str, value: Any, robot: bool, network: StaticNetwork | None) -> str | None:
        """A dedicated server's IPv6 address (canonical), which its static network puts on the link."""
        if value is None or value == "":
            return None
        if not robot:
            self.problem(f"{key}.ipv6", "is for dedicated servers", "drop it: a Cloud server's IPv6 comes from the API")
            return None
        if not _ipv6(value) or any(_unusable_ipv6(ipaddress.IPv6Address(value))):
            fix = "an address of the server's /64 in Robot, e.g. 2a01:4f8:111:4221::1"
            self.problem(f"{key}.ipv6", f"{value!r} is not an IPv6 address a node can own", fix)
            return None
        if network is None:
            fix = "add network: {interface, gateway} (the static config that puts it on the link), or drop ipv6"
            self.problem(f"{key}.ipv6", "needs the node's static network", fix)
            return None
        return str(ipaddress.IPv6Address(value))

    def _published_ipv6(self, config: StackConfig) -> None:
        """With dns.ipv6, every dedicated node that gets an A value needs the address its AAAA value publishes."""
        dns = config.dns
        if dns is None or not dns.ipv6:
            return
        for node in config.nodes:
            if node.kind == "robot" and not node.ipv6 and (node.control_plane or dns.node_records):
                fix = "set its ipv6 (an address of its /64 in Robot, e.g. 2a01:4f8:111:4221::1), or dns.ipv6: false"
                self.problem(f"nodes.{node.name}.ipv6", "is required: dns.ipv6 publishes an AAAA value for it", fix)

    def _node_choice(self, key: str, value: Any, choices: Sequence[str], default: str) -> str:
        if value is None:
            return default
        if value not in choices:
            self.problem(key, f"{value!r} is not one of {', '.join(choices)}", f"use {default} unless you mean it")
            return default
        return str(value)

    def _patch_groups(self) -> dict[str, tuple[PatchSpec, ...]]:
        groups = self._object("patches", self.values.get("patches"), _PATCH_GROUPS)
        return {group: self._patches(f"patches.{group}", groups.get(group), group) for group in _PATCH_GROUPS}

    def _patches(self, key: str, value: Any, source: str) -> tuple[PatchSpec, ...]:
        value = _decoded(value)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(key, f"must be a list of patches, not {_kind(value)}", "write a YAML list, one patch each")
            return ()
        patches = []
        for number, item in enumerate(value, 1):
            spec = self._patch(f"{key}[{number - 1}]", item, f"{source} #{number}")
            if spec is not None:
                patches.append(spec)
        return tuple(patches)

    def _patch(self, key: str, item: Any, source: str) -> PatchSpec | None:
        """Inline text, a parsed mapping or list, or `@file` (read now, so a file change shows in the diff)."""
        if isinstance(item, dict):
            text = dump_documents([item])
        elif isinstance(item, list):
            text = json.dumps(item)
        elif isinstance(item, str) and item.startswith("@"):
            path = self.base_dir / item[1:]
            try:
                text, source = path.read_text(encoding="utf-8"), item[1:]
            except OSError as err:
                self.problem(key, f"cannot read {path}: {err.strerror}", "give a path relative to the project")
                return None
        elif isinstance(item, str):
            text = item
        else:
            self.problem(key, f"is {_kind(item)}, not a patch", "write YAML text, a mapping, or @file.yaml")
            return None
        try:
            load_patch(text, source=source)
        except TalosError as err:
            self.problem(key, str(err), "fix the patch")
            return None
        return PatchSpec(source, text)

    def _dns(self) -> DnsSpec | None:
        dns = self._object("dns", self.values.get("dns"), _DNS_KEYS)
        if not dns:
            return None
        zone = dns.get("zone")
        if not (isinstance(zone, str) and "." in zone):
            self.problem(
                "dns.zone", f"{zone!r} is not a DNS zone", "name a zone in the Cloud project, e.g. example.com"
            )
            return None
        endpoint_host = urlsplit(str(self.values.get("endpoint") or "")).hostname or ""
        default_name = endpoint_host.removesuffix(f".{zone}") if endpoint_host.endswith(f".{zone}") else "api"
        ttl = dns.get("ttl", 60)
        if not (isinstance(ttl, int) and not isinstance(ttl, bool) and ttl >= 60):
            self.problem("dns.ttl", f"{ttl!r} is not a TTL of at least 60 seconds", "use 60 while nodes change")
            ttl = 60
        return DnsSpec(
            zone=zone,
            name=str(dns.get("name") or default_name),
            ttl=ttl,
            create_zone=dns.get("createZone") is True,
            node_records=dns.get("nodeRecords", True) is not False,
            ipv6=self._flag_in("dns.ipv6", dns.get("ipv6", False), False, "write ipv6: true or false under dns"),
        )

    def _removal(self) -> RemovalPolicy:
        removal = self._object("removal", self.values.get("removal"), _REMOVAL_KEYS)
        flags = {}
        for key, default in (("drain", True), ("reboot", True), ("deleteCloudServers", False)):
            value = removal.get(key, default)
            if not isinstance(value, bool):
                self.problem(
                    f"removal.{key}", f"must be true or false, not {value!r}", f"write {key}: {str(default).lower()}"
                )
                value = default
            flags[key] = value
        reset = removal.get("reset", "config")
        if reset not in RESETS:
            self.problem("removal.reset", f"{reset!r} is not one of {', '.join(RESETS)}", "write reset: config")
            reset = "config"
        return RemovalPolicy(flags["drain"], str(reset), flags["reboot"], flags["deleteCloudServers"])

    def _timeouts(self) -> dict[str, float]:
        timeouts = self._object("timeouts", self.values.get("timeouts"), TIMEOUTS)
        for name, value in timeouts.items():
            if not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
                self.problem(f"timeouts.{name}", f"{value!r} is not a positive number", "give seconds (attempts)")
        return {name: value for name, value in timeouts.items() if isinstance(value, int | float) and value > 0}


def _decoded(value: Any) -> Any:
    """Objects and arrays reach a program as JSON text; parsed ones pass through."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _cluster_name(value: str) -> tuple[str, str] | None:
    if _NODE_NAME.match(value):
        return None
    return f"{value!r} is not a cluster name", "use lowercase letters, digits and -, e.g. prod"


def _endpoint(value: str) -> tuple[str, str] | None:
    url = urlsplit(value)
    if url.scheme == "https" and url.hostname and url.port:
        return None
    return f"{value!r} is not https://<host>:<port>", "write e.g. https://api.example.com:6443"


def _ipv4(value: Any) -> bool:
    try:
        return isinstance(value, str) and ipaddress.ip_address(value).version == 4
    except ValueError:
        return False


def _ipv6(value: Any) -> bool:
    try:
        return isinstance(value, str) and ipaddress.ip_address(value).version == 6
    except ValueError:
        return False


def _unusable_ipv6(address: ipaddress.IPv6Address) -> tuple[bool, ...]:
    scoped, mapped = address.scope_id is not None, address.ipv4_mapped is not None
    return address.is_link_local, address.is_multicast, address.is_unspecified, address.is_loopback, scoped, mapped


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean"}.get(type(value), type(value).__name__)


def read_stack_config() -> StackConfig:
    """The running stack's config, validated; secrets stored in plain text are refused (with the fix)."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env, is_config_secret

    project = pulumi.get_project()
    everything = {**get_config_env(), **CONFIG.get()}
    values = {key.split(":", 1)[1]: value for key, value in everything.items() if key.startswith(f"{project}:")}
    values |= {key: value for key, value in everything.items() if key == "hcloud:token"}
    plain = [key for key in SECRET_KEYS if values.get(key) and not is_config_secret(_full(project, key))]
    if plain:
        raise StackConfigError([_plain_secret(key) for key in plain])
    return StackConfig.parse(values)


def _full(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _plain_secret(key: str) -> str:
    return (
        f"{key} is stored in plain text (fix: pulumi config rm {key}, then pulumi config set --secret {key} ..., "
        "and rotate it: it was readable in the stack file)"
    )


def rescue_public_key() -> Any:
    """The public line of the stack's rescue SSH key (an Output, public; None when the key is not set).

    Cloud servers are created with it; an unusable key yields None here and RescueInstall's check names the fix.
    """
    import pulumi

    from hetzner.errors import HetznerError
    from hetzner.keys import load_private_key, public_key_line

    def public_line(text: str) -> str | None:
        try:
            return public_key_line(load_private_key(text), "talos-hetzner")
        except HetznerError:
            return None

    secret = pulumi.Config().get_secret("rescueSshKey")
    return None if secret is None else pulumi.Output.unsecret(secret.apply(public_line))
