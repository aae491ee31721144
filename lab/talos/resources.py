"""The COSI resources a lab node serves through `cosi.resource.State` (talos.md §5.4), built from its state.

Each resource carries both encodings Talos fills: the protobuf spec (field numbers of Talos' resource
protos) and its YAML rendering. Access follows Talos' filter: unknown type or namespace -> PermissionDenied,
a sensitive type without os:admin -> "not authorized", a missing id -> NotFound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml
from google.protobuf.json_format import MessageToDict
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from talos.api.gen.resource.config import config_pb2
from talos.api.gen.resource.definitions.block import block_pb2
from talos.api.gen.resource.definitions.runtime import runtime_pb2
from talos.api.gen.v1alpha1 import meta_pb2, resource_pb2
from talos.kubernetes_images import CONFIG_TYPES

if TYPE_CHECKING:
    from lab.talos.node import TalosNode

NOT_AUTHORIZED = "not authorized"
NAMESPACES = ("meta", "config", "runtime", "network", "etcd", "secrets", "k8s", "controlplane", "cluster")
_STAGES = {
    "booting": 1,
    "installing": 2,
    "maintenance": 3,
    "running": 4,
    "rebooting": 5,
    "shutting down": 6,
    "resetting": 7,
    "upgrading": 8,
}


@dataclass(frozen=True)
class Definition:
    type: str
    namespace: str
    aliases: tuple[str, ...]
    sensitive: bool
    build: Callable[[TalosNode], dict[str, resource_pb2.Resource]]


def get_resource(node: TalosNode, namespace: str, type_: str, id_: str, roles: frozenset[str]) -> Any:
    items = _items(node, namespace, type_, roles)
    if id_ not in items:
        raise GRPCError(Status.NOT_FOUND, f"resource {type_}({namespace}/{id_}@undefined) doesn't exist")
    return items[id_]


def list_resources(node: TalosNode, namespace: str, type_: str, roles: frozenset[str]) -> list[Any]:
    return list(_items(node, namespace, type_, roles).values())


def _items(node: TalosNode, namespace: str, type_: str, roles: frozenset[str]) -> dict[str, Any]:
    definition = DEFINITIONS.get(type_.lower())
    if definition is None:
        raise GRPCError(Status.PERMISSION_DENIED, f'resource type "{type_}" is not supported')
    if definition.sensitive and "os:admin" not in roles:
        raise GRPCError(Status.PERMISSION_DENIED, NOT_AUTHORIZED)
    if namespace not in NAMESPACES:
        raise GRPCError(Status.PERMISSION_DENIED, f'namespace "{namespace}" is not supported')
    exact = namespace == definition.namespace and type_ == definition.type
    return definition.build(node) if exact else {}


def _resource(
    namespace: str,
    type_: str,
    id_: str,
    spec: Any,
    yaml_spec: str,
    *,
    owner: str = "",
    annotations: dict[str, str] | None = None,
    version: int = 1,
) -> resource_pb2.Resource:
    now = datetime.now(UTC)
    metadata = resource_pb2.Metadata(
        namespace=namespace, type=type_, id=id_, version=str(version), owner=owner, phase="running"
    )
    metadata.created.FromDatetime(now)
    metadata.updated.FromDatetime(now)
    metadata.annotations.update(annotations or {})
    proto_spec = spec if isinstance(spec, bytes) else spec.SerializeToString()
    return resource_pb2.Resource(metadata=metadata, spec=resource_pb2.Spec(proto_spec=proto_spec, yaml_spec=yaml_spec))


def _yaml(spec: Any) -> str:
    return yaml.safe_dump(MessageToDict(spec, preserving_proto_field_name=True), sort_keys=False)


def _disks(node: TalosNode) -> dict[str, resource_pb2.Resource]:
    items = {}
    for device in node.storage.devices():
        spec = block_pb2.DiskSpec(
            size=device.size,
            io_size=512,
            sector_size=512,
            readonly=device.readonly,
            model=device.model,
            serial=device.serial,
            wwid=device.wwid,
            bus_path=device.bus_path,
            sub_system="/sys/class/block",
            transport=device.transport,
            rotational=device.rotational,
            cdrom=device.cdrom,
            dev_path=device.dev_path,
            pretty_size=_pretty(device.size),
            symlinks=list(device.symlinks),
        )
        items[device.name] = _resource(
            "runtime", "Disks.block.talos.dev", device.name, spec, _yaml(spec), owner="block.DisksController"
        )
    return items


def _system_disk(node: TalosNode) -> dict[str, resource_pb2.Resource]:
    if node.system_disk is None or node.maintenance:
        return {}
    spec = block_pb2.SystemDiskSpec(disk_id=node.system_disk, dev_path=f"/dev/{node.system_disk}")
    yaml_spec = yaml.safe_dump({"diskID": spec.disk_id, "devPath": spec.dev_path}, sort_keys=False)
    return {"system-disk": _resource("runtime", "SystemDisks.block.talos.dev", "system-disk", spec, yaml_spec)}


def _machine_configs(node: TalosNode) -> dict[str, resource_pb2.Resource]:
    items = {}
    persisted = node.storage.read_state()
    for id_, raw in (("v1alpha1", node.config.raw if node.config else None), ("persistent", persisted)):
        if raw is not None:
            spec = config_pb2.MachineConfigSpec(yaml_marshalled=raw)
            text = raw.decode()
            yaml_spec = "|\n" + "".join(f"    {line}" if line.strip() else line for line in text.splitlines(True))
            items[id_] = _resource(
                "config",
                "MachineConfigs.config.talos.dev",
                id_,
                spec,
                yaml_spec,
                annotations={"talos.dev/yaml-spec": "1"},
            )
    return items


def _machine_type(node: TalosNode) -> dict[str, resource_pb2.Resource]:
    if node.config is None:
        return {}
    kinds = {"init": config_pb2.INIT, "controlplane": config_pb2.CONTROL_PLANE, "worker": config_pb2.WORKER}
    spec = config_pb2.MachineTypeSpec(machine_type=kinds.get(node.config.machine_type, config_pb2.UNKNOWN))
    yaml_spec = f"{node.config.machine_type}\n"
    return {"machine-type": _resource("config", "MachineTypes.config.talos.dev", "machine-type", spec, yaml_spec)}


def _machine_status(node: TalosNode) -> dict[str, resource_pb2.Resource]:
    unmet = [] if node.ready() else [runtime_pb2.UnmetCondition(name="services", reason="waiting for services")]
    if node.without_cni and node.services_up:
        unmet.append(runtime_pb2.UnmetCondition(name="nodeReady", reason=f'node "{node.hostname}" is not ready'))
    ready = not unmet
    spec = runtime_pb2.MachineStatusSpec(
        stage=_STAGES.get(node.stage.value, 0),
        status=runtime_pb2.MachineStatusStatus(ready=ready, unmet_conditions=unmet),
    )
    status = {"ready": ready, "unmetConditions": [{"name": c.name, "reason": c.reason} for c in unmet]}
    yaml_spec = yaml.safe_dump({"stage": node.stage.value, "status": status}, sort_keys=False)
    return {"machine": _resource("runtime", "MachineStatuses.runtime.talos.dev", "machine", spec, yaml_spec)}


def _meta_keys(node: TalosNode) -> dict[str, resource_pb2.Resource]:
    """The META partition's keys, id `0x%02x` of the tag; Talos shows each value as a string."""
    if node.image is None:
        return {}
    items = {}
    for tag, value in sorted(node.storage.read_meta().items()):
        id_, text = f"0x{tag:02x}", value.decode(errors="replace")
        spec = runtime_pb2.MetaKeySpec(value=text)
        items[id_] = _resource("runtime", "MetaKeys.runtime.talos.dev", id_, spec, yaml.safe_dump({"value": text}))
    return items


def _extension_statuses(node: TalosNode) -> dict[str, resource_pb2.Resource]:
    """An Image Factory image carries one virtual extension, `schematic`, whose version is the schematic ID.

    The spec is Talos' extensions.Layer {image=1, metadata=2 {name=1, version=2, author=3, description=4}},
    encoded by hand: the project has no generated class for it.
    """
    if node.image is None:
        return {}
    metadata = {
        "name": "schematic",
        "version": node.image.schematic,
        "author": "Image Factory",
        "description": "Virtual extension which specifies the schematic of the image built with Image Factory.",
    }
    encoded = _length_delimited([(number, value.encode()) for number, value in enumerate(metadata.values(), 1)])
    yaml_spec = yaml.safe_dump({"image": "", "metadata": metadata}, sort_keys=False)
    spec = _length_delimited([(2, encoded)])
    return {"0": _resource("runtime", "ExtensionStatuses.runtime.talos.dev", "0", spec, yaml_spec)}


def _length_delimited(fields: list[tuple[int, bytes]]) -> bytes:
    """Protobuf wire format of string or message fields (wire type 2)."""
    out = bytearray()
    for number, payload in fields:
        for value in ((number << 3) | 2, len(payload)):
            while value > 0x7F:
                out.append(value & 0x7F | 0x80)
                value >>= 7
            out.append(value)
        out += payload
    return bytes(out)


def _static_pod_configs(type_: str) -> Callable[[TalosNode], dict[str, resource_pb2.Resource]]:
    """A control plane's config resource of one static pod (namespace `controlplane`, id = the pod), as
    lab.talos.kubernetes_components keeps it: its metadata version grows with every image change. The spec is
    only the image: APIServerConfigSpec{image=1}, Controller-manager/SchedulerConfigSpec{enabled=1, image=2}."""
    name = next(pod for pod, kind in CONFIG_TYPES.items() if kind == type_)

    def build(node: TalosNode) -> dict[str, resource_pb2.Resource]:
        component = node.components.running.get(name)
        if component is None:
            return {}
        image = component.image.encode()
        fields = {"image": component.image}
        if name == "kube-apiserver":
            spec = _length_delimited([(1, image)])
        else:
            spec, fields = b"\x08\x01" + _length_delimited([(2, image)]), {"enabled": True, **fields}
        yaml_spec = yaml.safe_dump(fields, sort_keys=False)
        return {name: _resource("controlplane", type_, name, spec, yaml_spec, version=component.config_version)}

    return build


def _definitions(_node: TalosNode) -> dict[str, resource_pb2.Resource]:
    items = {}
    spec_type = meta_pb2.ResourceDefinitionSpec
    for key, definition in DEFINITIONS.items():
        spec = spec_type(
            resource_type=definition.type,
            display_type=definition.type.split(".", 1)[0].removesuffix("s"),
            default_namespace=definition.namespace,
            aliases=list(definition.aliases),
            all_aliases=list(definition.aliases),
            sensitivity=spec_type.SENSITIVE if definition.sensitive else spec_type.NON_SENSITIVE,
        )
        items[key] = _resource("meta", "ResourceDefinitions.meta.cosi.dev", key, spec, _yaml(spec))
    return items


def _namespaces(_node: TalosNode) -> dict[str, resource_pb2.Resource]:
    return {
        name: _resource("meta", "Namespaces.meta.cosi.dev", name, meta_pb2.NamespaceSpec(), "{}\n")
        for name in NAMESPACES
    }


def _pretty(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1000
    return f"{value:.1f} EB"


DEFINITIONS: dict[str, Definition] = {
    d.type.lower(): d
    for d in (
        Definition("MachineConfigs.config.talos.dev", "config", ("machineconfig", "mc"), True, _machine_configs),
        Definition("MachineTypes.config.talos.dev", "config", ("machinetype",), False, _machine_type),
        Definition("Disks.block.talos.dev", "runtime", ("disk", "disks"), False, _disks),
        Definition("SystemDisks.block.talos.dev", "runtime", ("systemdisk",), False, _system_disk),
        Definition("MachineStatuses.runtime.talos.dev", "runtime", ("machinestatus",), False, _machine_status),
        Definition("ExtensionStatuses.runtime.talos.dev", "runtime", ("extensions",), False, _extension_statuses),
        Definition("MetaKeys.runtime.talos.dev", "runtime", ("meta",), False, _meta_keys),
        Definition("ResourceDefinitions.meta.cosi.dev", "meta", ("rd",), False, _definitions),
        *(Definition(kind, "controlplane", (), False, _static_pod_configs(kind)) for kind in CONFIG_TYPES.values()),
        Definition("Namespaces.meta.cosi.dev", "meta", ("ns",), False, _namespaces),
    )
}
