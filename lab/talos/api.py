"""A lab node's gRPC services, as apid and machined answer them: routing, roles, then the method.

Order as in Talos: apid's director first (`node`/`nodes` metadata; ignored in maintenance mode), then
machined's authorizer on the serving node (roles from the client certificate's Organization; every caller
is `os:reader` in maintenance mode), then the handler. A control plane forwards to other lab nodes in
process with the caller's roles (Talos dials them with its `os:impersonator` certificate); a worker has no
such certificate and refuses forwarding. One-to-many replies get `metadata.hostname` per message, and a
failing node contributes a metadata-only message with `error` and `status` while the call succeeds.
"""

from __future__ import annotations

import asyncio
import gzip
import tarfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from google.protobuf import message_factory
from google.rpc import status_pb2
from grpclib.const import Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream
from multidict import MultiDict

from lab.talos import resources
from lab.talos.machineconfig import config_diff, immediate_change_problem
from lab.talos.stages import EtcdState
from lab.talos.storage import image_from_installer
from talos.api.gen.common import common_pb2
from talos.api.gen.machine import image_pb2, lifecycle_pb2, machine_pb2
from talos.api.gen.storage import storage_pb2
from talos.api.gen.v1alpha1 import state_pb2
from talos.api.methods import METHODS, Method
from talos.versions import parse_version

if TYPE_CHECKING:
    from lab.talos.node import TalosNode

ADMIN, OPERATOR, READER, ETCD_BACKUP = "os:admin", "os:operator", "os:reader", "os:etcd:backup"
IMPERSONATOR = "os:impersonator"
ROLES = frozenset({ADMIN, OPERATOR, READER, ETCD_BACKUP, "os:image:verifier", "os:meta:writer", IMPERSONATOR})
_READ = frozenset({ADMIN, OPERATOR, READER})
RULES: dict[str, frozenset[str]] = {
    "/machine.MachineService/ApplyConfiguration": frozenset({ADMIN, READER}),  # reader: maintenance only
    "/machine.MachineService/Bootstrap": frozenset({ADMIN}),
    "/machine.MachineService/EtcdLeaveCluster": frozenset({ADMIN}),
    "/machine.MachineService/EtcdMemberList": _READ | {ETCD_BACKUP},
    "/machine.MachineService/EtcdRemoveMemberByID": frozenset({ADMIN}),
    "/machine.MachineService/EtcdStatus": _READ | {ETCD_BACKUP},
    "/machine.MachineService/Kubeconfig": frozenset({ADMIN}),
    "/machine.MachineService/MetaDelete": frozenset({ADMIN, "os:meta:writer"}),
    "/machine.MachineService/MetaWrite": frozenset({ADMIN, "os:meta:writer"}),
    "/machine.MachineService/Reboot": frozenset({ADMIN, OPERATOR}),
    "/machine.MachineService/Reset": frozenset({ADMIN}),
    "/machine.MachineService/ServiceList": _READ,
    "/machine.MachineService/Upgrade": frozenset({ADMIN}),
    "/machine.MachineService/Version": _READ,
    "/machine.LifecycleService/Upgrade": frozenset({ADMIN}),
    "/machine.ImageService/Pull": frozenset({ADMIN, OPERATOR}),
    "/storage.StorageService/Disks": _READ,
    "/cosi.resource.State/Get": _READ,
    "/cosi.resource.State/List": _READ,
}
"""Talos' machined rules for the methods the lab serves; a method without a rule needs os:admin."""

SINCE_1_13 = frozenset({"/machine.LifecycleService/Upgrade", "/machine.ImageService/Pull"})
"""Services new in Talos 1.13: older nodes do not register them (gRPC's "unknown service")."""
NOT_AUTHORIZED = "not authorized"
TRY_TIMEOUT = timedelta(minutes=1)
_MODE = machine_pb2.ApplyConfigurationRequest
_SERVICES_CONTROL_PLANE = ("apid", "auditd", "containerd", "cri", "dashboard", "etcd", "kubelet", "machined")
_SERVICES_COMMON = ("syslogd", "udevd")
_MAINTENANCE_SERVICES = ("apid", "auditd", "machined", "syslogd", "udevd")

Serve = Callable[["NodeApi", Any, frozenset[str]], Awaitable[list[Any]]]


class NodeApi:
    """grpclib handlers for every method in talos.api.methods, served by one node."""

    def __init__(self, node: TalosNode) -> None:
        self.node = node

    def __mapping__(self) -> dict[str, Handler]:
        return {
            path: Handler(partial(self._handle, method), method.cardinality, method.request, method.reply)
            for path, method in METHODS.items()
        }

    async def serve(self, method: Method, request: Any, roles: frozenset[str]) -> list[Any]:
        """Authorise and run one method on this node (machined's part)."""
        if method.path in SINCE_1_13 and self.node.image and parse_version(self.node.version)[:2] < (1, 13):
            raise GRPCError(Status.UNIMPLEMENTED, f"unknown service {method.path.split('/')[1]}")
        allowed = RULES.get(method.path, frozenset({ADMIN}))
        if not roles & allowed:
            raise GRPCError(Status.PERMISSION_DENIED, NOT_AUTHORIZED)
        return await _HANDLERS[method.path](self, request, roles)

    # -- apid's part ----------------------------------------------------------------------------------------

    async def _handle(self, method: Method, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        if self.node.stall:
            delay, self.node.stall = self.node.stall, 0.0
            await asyncio.sleep(delay)
        metadata = stream.metadata if stream.metadata is not None else MultiDict()
        replies = await self._route(method, request, self._roles(stream, metadata), metadata)
        await self._send(stream, method, replies)

    def _roles(self, stream: Stream[Any, Any], metadata: Any) -> frozenset[str]:
        if self.node.maintenance:
            return frozenset({READER})
        certificate = stream.peer.cert() or {}
        organizations = [
            value for rdn in certificate.get("subject", ()) for key, value in rdn if key == "organizationName"
        ]
        roles = frozenset(organizations) & ROLES
        if IMPERSONATOR in roles and "talos-role" in metadata:
            roles = frozenset(metadata.getall("talos-role")) & ROLES
        return roles

    async def _route(self, method: Method, request: Any, roles: frozenset[str], metadata: Any) -> list[Any]:
        if self.node.maintenance or "proxyfrom" in metadata:
            return await self.serve(method, request, roles)
        node_values = list(metadata.getall("node", []))
        nodes = list(metadata.getall("nodes", []))
        if node_values and len(node_values) != 1:
            raise GRPCError(Status.INVALID_ARGUMENT, "node metadata must be single-valued")
        forwarding = self.node.control_plane  # only control planes hold an os:impersonator certificate
        if not forwarding:
            if node_values and self._is_local(node_values[0]):
                node_values = []
            if len(nodes) == 1 and self._is_local(nodes[0]):
                nodes = []
        if nodes:
            if not method.one_to_many:
                raise GRPCError(
                    Status.INVALID_ARGUMENT, f"one-2-many proxying is not supported for method {method.path}"
                )
            if not forwarding:
                raise GRPCError(Status.PERMISSION_DENIED, "no request forwarding")
            return await self._fan_out(method, request, roles, nodes)
        if node_values:
            if not forwarding:
                raise GRPCError(Status.PERMISSION_DENIED, "no request forwarding")
            return await self._forward(node_values[0], method, request, roles)
        return await self.serve(method, request, roles)

    def _is_local(self, target: str) -> bool:
        return target in (self.node.address, self.node.hostname, "127.0.0.1", "localhost")

    async def _forward(self, target: str, method: Method, request: Any, roles: frozenset[str]) -> list[Any]:
        """apid-to-apid: the target node serves the call with the caller's roles."""
        peer = self.node.fabric.node_at(target)
        if peer is None or not peer.listener.serving:
            raise GRPCError(
                Status.UNAVAILABLE,
                f'connection error: desc = "transport: Error while dialing: dial tcp {target}:50000: connect: '
                'connection refused"',
            )
        if peer.config is None or peer.config.os_ca.crt != self.node.config.os_ca.crt:  # type: ignore[union-attr]
            raise GRPCError(
                Status.UNAVAILABLE,
                'connection error: desc = "transport: authentication handshake failed: tls: failed to verify '
                'certificate: x509: certificate signed by unknown authority"',
            )
        if peer is self.node:
            return await self.serve(method, request, roles)
        future = asyncio.run_coroutine_threadsafe(NodeApi(peer).serve(method, request, roles), peer.loop)
        return await asyncio.wrap_future(future)

    async def _fan_out(self, method: Method, request: Any, roles: frozenset[str], targets: list[str]) -> list[Any]:
        messages: list[Any] = []
        for target in targets:
            try:
                replies = await self._forward(target, method, request, roles)
            except GRPCError as err:
                replies = [_error_reply(method, target, err)]
            else:
                for reply in replies:
                    for message in reply.messages if not method.server_streaming else [reply]:
                        message.metadata.hostname = target
            messages.extend(replies)
        if method.server_streaming:
            return messages
        merged = method.reply()
        for reply in messages:
            merged.messages.extend(reply.messages)
        return [merged]

    async def _send(self, stream: Stream[Any, Any], method: Method, replies: list[Any]) -> None:
        if method.server_streaming and self.node.drop_streams > 0 and replies:
            self.node.drop_streams -= 1
            first = _split_first(replies)
            await stream.send_message(first)
            await asyncio.sleep(0.01)
            self.node.listener.abort_connection(stream.peer.addr())
            return
        for reply in replies:
            await stream.send_message(reply)

    # -- machined's handlers --------------------------------------------------------------------------------

    async def version(self, _request: Any, _roles: frozenset[str]) -> list[Any]:
        node = self.node
        message = machine_pb2.Version(
            version=machine_pb2.VersionInfo(
                tag=node.version,
                sha="lab" + node.version.replace(".", ""),
                built="",
                go_version="go1.25.5",
                os="linux",
                arch=node.image.arch if node.image else "amd64",
            ),
            platform=machine_pb2.PlatformInfo(name="metal", mode="metal"),
        )
        if not node.maintenance:
            message.features.rbac = True
        return [machine_pb2.VersionResponse(messages=[message])]

    async def apply_configuration(self, request: Any, roles: frozenset[str]) -> list[Any]:
        node = self.node
        if node.apply_rebooting:
            raise GRPCError(
                Status.FAILED_PRECONDITION,
                "configuration was already applied and node is rebooting, cannot apply more configuration "
                "changes until next reboot",
            )
        if not node.maintenance and ADMIN not in roles:
            raise GRPCError(Status.PERMISSION_DENIED, NOT_AUTHORIZED)
        config = node.validate(request.data)
        mode = request.mode
        if node.maintenance and mode == _MODE.REBOOT:
            mode = _MODE.NO_REBOOT
        details, suffix = "Applied configuration with a reboot", ""
        problem = None if node.maintenance else immediate_change_problem(node.config, config)  # type: ignore[arg-type]
        if mode in (_MODE.TRY, _MODE.NO_REBOOT):
            if problem:
                raise GRPCError(Status.INVALID_ARGUMENT, problem)
            details = "Applied configuration without a reboot"
        elif mode == _MODE.STAGED:
            details = "Staged configuration to be applied after the next reboot"
        elif mode == _MODE.AUTO:
            if problem:
                mode, suffix = _MODE.REBOOT, ": " + problem
            else:
                mode, details = _MODE.NO_REBOOT, "Applied configuration without a reboot"
        if request.dry_run:
            summary = f"Dry run summary:\n{details} (skipped in dry-run).\n{config_diff(node.config, config)}"
            return [
                machine_pb2.ApplyConfigurationResponse(
                    messages=[machine_pb2.ApplyConfiguration(mode=mode, mode_details=summary)]
                )
            ]
        try_timeout = TRY_TIMEOUT
        if mode == _MODE.TRY:
            if request.HasField("try_mode_timeout"):
                try_timeout = request.try_mode_timeout.ToTimedelta()
            revert = _go_duration(try_timeout)
            details += f"\nThe config is applied in 'try' mode and will be automatically reverted back in {revert}"
        names = {_MODE.REBOOT: "reboot", _MODE.NO_REBOOT: "no-reboot", _MODE.STAGED: "staged", _MODE.TRY: "try"}
        node.apply_config(config, names[mode], try_timeout.total_seconds())
        message = machine_pb2.ApplyConfiguration(mode=mode, mode_details=details + suffix)
        return [machine_pb2.ApplyConfigurationResponse(messages=[message])]

    async def bootstrap(self, _request: Any, _roles: frozenset[str]) -> list[Any]:
        self.node.bootstrap()
        return [machine_pb2.BootstrapResponse(messages=[machine_pb2.Bootstrap()])]

    async def kubeconfig(self, _request: Any, _roles: frozenset[str]) -> list[Any]:
        return [common_pb2.Data(bytes=pack_single_file("kubeconfig", self.node.kubeconfig().encode()))]

    async def reboot(self, request: Any, _roles: frozenset[str]) -> list[Any]:
        mode = machine_pb2.RebootRequest.Mode.Name(request.mode).lower()
        return [machine_pb2.RebootResponse(messages=[machine_pb2.Reboot(actor_id=self.node.reboot(mode))])]

    async def reset(self, request: Any, _roles: frozenset[str]) -> list[Any]:
        labels = [spec.label for spec in request.system_partitions_to_wipe if spec.wipe]
        if request.user_disks_to_wipe and request.mode == machine_pb2.ResetRequest.SYSTEM_DISK:
            raise GRPCError(
                Status.UNKNOWN,
                "reset failed: invalid input, wipe mode SYSTEM_DISK doesn't support UserDisksToWipe parameter",
            )
        self._check_user_disks(request.user_disks_to_wipe)
        if request.system_partitions_to_wipe and request.mode == machine_pb2.ResetRequest.USER_DISKS:
            raise GRPCError(
                Status.UNKNOWN,
                "reset failed: invalid input, wipe mode USER_DISKS doesn't support SystemPartitionsToWipe parameter",
            )
        for spec in request.system_partitions_to_wipe:
            if spec.label not in ("STATE", "EPHEMERAL", "META"):
                raise GRPCError(
                    Status.UNKNOWN,
                    f'failed to get volume status with label "{spec.label}": resource VolumeStatuses.block.talos.dev'
                    f"(runtime/{spec.label}@undefined) doesn't exist",
                )
        whole_disk = request.mode != machine_pb2.ResetRequest.USER_DISKS and not request.system_partitions_to_wipe
        actor = self.node.reset(graceful=request.graceful, reboot=request.reboot, labels=None if whole_disk else labels)
        return [machine_pb2.ResetResponse(messages=[machine_pb2.Reset(actor_id=actor)])]

    async def upgrade(self, request: Any, _roles: frozenset[str]) -> list[Any]:
        image = image_from_installer(request.image, self.node.image) if self.node.image else None
        if image is None:
            raise GRPCError(
                Status.UNKNOWN,
                f'error validating installer image "{request.image}": failed to pull image "{request.image}": '
                f"{request.image}: not found",
            )
        if not (request.force or request.preserve):
            self._check_etcd_for_upgrade()
        actor = self.node.upgrade(image, stage=request.stage)
        message = machine_pb2.Upgrade(ack="Upgrade request received", actor_id=actor)
        return [machine_pb2.UpgradeResponse(messages=[message])]

    def _check_user_disks(self, devices: Any) -> None:
        """Reset's checks of `user_disks_to_wipe` (device paths), in Talos' order and words."""
        node = self.node
        known = {device.dev_path: device for device in node.storage.devices()}
        system = f"/dev/{node.system_disk}" if node.system_disk else None
        for path in devices:
            device = known.get(path)
            if device is None:
                problem = "wasn't found"
            elif device.readonly:
                problem = "is readonly"
            elif path == system:
                problem = "is the system disk"
            else:
                continue
            raise GRPCError(Status.UNKNOWN, f"reset user disk failed: device {path} {problem}")

    def _check_etcd_for_upgrade(self) -> None:
        """Upgrade without force/preserve on a control plane: machined's etcd ValidateForUpgrade. (Talos also
        needs an etcd client from the control planes; the lab skips the check while its etcd has no members.)"""
        node = self.node
        if node.maintenance or not node.control_plane:
            return
        refusal = node.fabric.upgrade_refusal(node.etcd_cluster_id())
        if refusal is not None:
            raise GRPCError(Status.UNKNOWN, f"error validating etcd for upgrade: {refusal}")

    async def image_pull(self, request: Any, _roles: frozenset[str]) -> list[Any]:
        reference = request.image_ref
        if self.node.image is None or image_from_installer(reference, self.node.image) is None:
            raise GRPCError(Status.NOT_FOUND, f'failed to pull image "{reference}": {reference}: not found')
        layer = image_pb2.ImageServicePullLayerProgress
        replies = [
            image_pb2.ImageServicePullResponse(
                pull_progress=image_pb2.ImageServicePullProgress(
                    layer_id="sha256:lab", progress=layer(status=status, offset=offset, total=1 << 20)
                )
            )
            for status, offset in ((layer.DOWNLOADING, 1 << 19), (layer.DOWNLOAD_COMPLETE, 1 << 20))
        ]
        self.node.pulled_images.add(reference)
        return [*replies, image_pb2.ImageServicePullResponse(name=reference)]

    async def lifecycle_upgrade(self, request: Any, _roles: frozenset[str]) -> list[Any]:
        reference = request.source.image_name

        def line(text: str) -> Any:
            progress = lifecycle_pb2.LifecycleServiceInstallProgress(message=text)
            return lifecycle_pb2.LifecycleServiceUpgradeResponse(progress=progress)

        def exit_code(code: int) -> Any:
            progress = lifecycle_pb2.LifecycleServiceInstallProgress(exit_code=code)
            return lifecycle_pb2.LifecycleServiceUpgradeResponse(progress=progress)

        image = image_from_installer(reference, self.node.image) if self.node.image else None
        if reference not in self.node.pulled_images or image is None:
            return [line(f"error: image {reference!r} is not available in containerd (pull it first)"), exit_code(1)]
        await self.node.install_image(image)
        return [line(f"installing Talos {image.version} from {reference}"), line("upgrade successful"), exit_code(0)]

    async def disks(self, _request: Any, _roles: frozenset[str]) -> list[Any]:
        node = self.node
        disks = []
        for device in node.storage.devices():
            kind = storage_pb2.Disk.UNKNOWN
            if device.cdrom:
                kind = storage_pb2.Disk.CD
            elif device.transport == "nvme":
                kind = storage_pb2.Disk.NVME
            elif device.transport == "mmc":
                kind = storage_pb2.Disk.SD
            elif device.rotational:
                kind = storage_pb2.Disk.HDD
            elif device.transport:
                kind = storage_pb2.Disk.SSD
            disks.append(
                storage_pb2.Disk(
                    device_name=device.dev_path,
                    model=device.model,
                    size=device.size,
                    serial=device.serial,
                    wwid=device.wwid,
                    type=kind,
                    bus_path=device.bus_path,
                    system_disk=not node.maintenance and device.name == node.system_disk,
                    subsystem="/sys/class/block",
                    readonly=device.readonly,
                )
            )
        return [storage_pb2.DisksResponse(messages=[storage_pb2.Disks(disks=disks)])]

    async def service_list(self, _request: Any, _roles: frozenset[str]) -> list[Any]:
        node = self.node
        if node.maintenance:
            services = [_service(name, "Running", True) for name in _MAINTENANCE_SERVICES]
        else:
            services = [self._service(name) for name in sorted((*_SERVICES_CONTROL_PLANE, *_SERVICES_COMMON, "trustd"))]
            services = [s for s in services if s is not None]
        return [machine_pb2.ServiceListResponse(messages=[machine_pb2.ServiceList(services=services)])]

    def _service(self, name: str) -> Any:
        node = self.node
        if name in ("etcd", "trustd") and not node.control_plane:
            return None
        if name == "kubelet" and node.services_up and not node.components.kubelet_running():
            return _service(name, "Starting", None)  # restarting for a new image (lab.talos.kubernetes_components)
        if name in ("containerd", "cri", "trustd", "kubelet"):
            return _service(name, "Running", True) if node.services_up else _service(name, "Starting", None)
        if name != "etcd":
            return _service(name, "Running", True)
        if node.etcd_state is EtcdState.PREPARING:
            return _service(name, "Preparing", None, "Running pre stage")
        if node.etcd_state is EtcdState.STARTING:
            return _service(name, "Running", None, "Health check not yet passed")
        if node.etcd_state is EtcdState.HEALTHY:
            return _service(name, "Running", True, "Health check successful")
        return _service(name, "Waiting", None, 'Waiting for service "cri" to be "up"')

    async def etcd_status(self, _request: Any, _roles: frozenset[str]) -> list[Any]:
        member, leader = self.node.etcd_status()
        status = machine_pb2.EtcdMemberStatus(
            member_id=member.id,
            protocol_version="3.6.12",
            storage_version="3.6.0",
            db_size=20480,
            db_size_in_use=16384,
            leader=leader if self.node.etcd_state is EtcdState.HEALTHY else 0,
            raft_index=1,
            raft_term=1,
            raft_applied_index=1,
        )
        return [machine_pb2.EtcdStatusResponse(messages=[machine_pb2.EtcdStatus(member_status=status)])]

    async def etcd_member_list(self, _request: Any, _roles: frozenset[str]) -> list[Any]:
        members = self.node.etcd_members()
        message = machine_pb2.EtcdMembers(
            legacy_members=[m.hostname for m in members],
            members=[
                machine_pb2.EtcdMember(id=m.id, hostname=m.hostname, peer_urls=[m.peer_url], client_urls=[m.client_url])
                for m in members
            ],
        )
        return [machine_pb2.EtcdMemberListResponse(messages=[message])]

    async def etcd_remove_member(self, request: Any, _roles: frozenset[str]) -> list[Any]:
        node = self.node
        node.require_control_plane("etcd remove member")
        refusal = node.fabric.removal_refusal(node.etcd_cluster_id(), request.member_id, by=node.hostname)
        if refusal is not None:
            raise GRPCError(
                Status.UNKNOWN, f"failed to remove member: failed to remove member {request.member_id}: {refusal}"
            )
        if not node.fabric.remove_member(node.etcd_cluster_id(), request.member_id):
            raise GRPCError(
                Status.NOT_FOUND, f"failed to remove member {request.member_id}: etcdserver: member not found"
            )
        return [machine_pb2.EtcdRemoveMemberByIDResponse(messages=[machine_pb2.EtcdRemoveMemberByID()])]

    async def etcd_leave_cluster(self, _request: Any, _roles: frozenset[str]) -> list[Any]:
        self.node.leave_etcd()
        return [machine_pb2.EtcdLeaveClusterResponse(messages=[machine_pb2.EtcdLeaveCluster()])]

    async def meta_write(self, request: Any, _roles: frozenset[str]) -> list[Any]:
        self.node.meta_write(request.key, request.value)
        return [machine_pb2.MetaWriteResponse(messages=[machine_pb2.MetaWrite()])]

    async def meta_delete(self, request: Any, _roles: frozenset[str]) -> list[Any]:
        self.node.meta_delete(request.key)
        return [machine_pb2.MetaDeleteResponse(messages=[machine_pb2.MetaDelete()])]

    async def resource_get(self, request: Any, roles: frozenset[str]) -> list[Any]:
        resource = resources.get_resource(self.node, request.namespace, request.type, request.id, roles)
        return [state_pb2.GetResponse(resource=resource)]

    async def resource_list(self, request: Any, roles: frozenset[str]) -> list[Any]:
        items = resources.list_resources(self.node, request.namespace, request.type, roles)
        return [state_pb2.ListResponse(resource=item) for item in items]


_HANDLERS: dict[str, Serve] = {
    "/machine.MachineService/ApplyConfiguration": NodeApi.apply_configuration,
    "/machine.MachineService/Bootstrap": NodeApi.bootstrap,
    "/machine.MachineService/EtcdLeaveCluster": NodeApi.etcd_leave_cluster,
    "/machine.MachineService/EtcdMemberList": NodeApi.etcd_member_list,
    "/machine.MachineService/EtcdRemoveMemberByID": NodeApi.etcd_remove_member,
    "/machine.MachineService/EtcdStatus": NodeApi.etcd_status,
    "/machine.MachineService/Kubeconfig": NodeApi.kubeconfig,
    "/machine.MachineService/MetaDelete": NodeApi.meta_delete,
    "/machine.MachineService/MetaWrite": NodeApi.meta_write,
    "/machine.MachineService/Reboot": NodeApi.reboot,
    "/machine.MachineService/Reset": NodeApi.reset,
    "/machine.MachineService/ServiceList": NodeApi.service_list,
    "/machine.MachineService/Upgrade": NodeApi.upgrade,
    "/machine.MachineService/Version": NodeApi.version,
    "/machine.LifecycleService/Upgrade": NodeApi.lifecycle_upgrade,
    "/machine.ImageService/Pull": NodeApi.image_pull,
    "/storage.StorageService/Disks": NodeApi.disks,
    "/cosi.resource.State/Get": NodeApi.resource_get,
    "/cosi.resource.State/List": NodeApi.resource_list,
}


def pack_single_file(name: str, content: bytes) -> bytes:
    """A gzip'd tar of one file as Talos writes it: the tar writer is never closed (no padding, no end blocks)."""
    header = tarfile.TarInfo(name)
    header.size, header.mode, header.mtime = len(content), 0o600, int(time.time())
    return gzip.compress(header.tobuf(format=tarfile.USTAR_FORMAT) + content)


def _service(name: str, state: str, healthy: bool | None, message: str = "") -> Any:
    info = machine_pb2.ServiceInfo(id=name, state=state)
    info.health.unknown = healthy is None
    info.health.healthy = bool(healthy)
    info.health.last_message = message
    event = info.events.events.add(msg=message or f"Service {state.lower()}", state=state)
    event.ts.GetCurrentTime()
    return info


def _error_reply(method: Method, target: str, err: GRPCError) -> Any:
    """The metadata-only message apid puts in a one-to-many reply for a node that failed."""
    code = "".join(part.capitalize() for part in err.status.name.split("_"))
    metadata = common_pb2.Metadata(
        hostname=target,
        error=f"rpc error: code = {code} desc = {err.message}",
        status=status_pb2.Status(code=err.status.value, message=err.message or ""),
    )
    if method.server_streaming:
        return method.reply(metadata=metadata)
    item = message_factory.GetMessageClass(method.reply.DESCRIPTOR.fields_by_name["messages"].message_type)
    return method.reply(messages=[item(metadata=metadata)])


def _split_first(replies: list[Any]) -> Any:
    """The first message of a stream; a lone data chunk is halved so the stream can break in its middle."""
    first = replies[0]
    if len(replies) == 1 and isinstance(first, common_pb2.Data) and len(first.bytes) > 1:
        return common_pb2.Data(metadata=first.metadata, bytes=first.bytes[: len(first.bytes) // 2])
    return first


def _go_duration(delta: timedelta) -> str:
    """Go's time.Duration.String for whole seconds: `1m0s`, `30s`, `1h2m3s`."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
