"""A synchronous client for the Talos API of one endpoint (a node's apid, TCP 50000).

Two modes, fixed at construction:
- maintenance (`credentials=None`): TLS without a client certificate and without verifying the node, or
  with its certificate pinned (`fingerprints`); Talos grants every caller `os:reader` there. A machine config
  is only ever sent after the node has shown on the same connection that it has none (Version without
  `features`); a configured node refuses the handshake and the client raises NodeConfiguredError.
- authenticated (`credentials` = a talosconfig context): the node's certificate must chain to the cluster's
  OS CA and the client presents the context's certificate; its roles decide what is allowed.

Every call may name a target `node`: apid on the endpoint proxies it there (`node` metadata). Replies that
carry per-node metadata are checked message by message; a node's error raises its typed TalosApiError.
The client runs its own asyncio loop: use it from synchronous code, one thread at a time, and close it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Literal, TypeVar

from google.protobuf import empty_pb2
from grpclib.const import Status

from common.waiting import Progress, no_progress
from talos.api import methods
from talos.api.archive import unpack_single_file
from talos.api.domain import (
    ApplyMode,
    ApplyResult,
    Disk,
    EtcdMember,
    EtcdMemberStatus,
    MachineStatus,
    NodeVersion,
    ServiceStatus,
    apply_mode_name,
    apply_mode_value,
)
from talos.api.errors import (
    InstallerFailedError,
    NodeConfiguredError,
    NotFoundError,
    TalosApiError,
    error_for_status,
)
from talos.api.gen.common import common_pb2
from talos.api.gen.machine import image_pb2, lifecycle_pb2, machine_pb2
from talos.api.gen.resource.config import config_pb2
from talos.api.gen.resource.definitions.enums import enums_pb2
from talos.api.gen.resource.definitions.runtime import runtime_pb2
from talos.api.gen.v1alpha1 import resource_pb2, state_pb2
from talos.api.methods import Method
from talos.api.tls import authenticated_context, maintenance_context
from talos.api.transport import NodeChannel, call, split_endpoint
from talos.talosconfig import TalosContext

T = TypeVar("T")

MACHINE_CONFIG = ("config", "MachineConfigs.config.talos.dev")
MACHINE_STATUS = ("runtime", "MachineStatuses.runtime.talos.dev", "machine")
META_KEYS = ("runtime", "MetaKeys.runtime.talos.dev")
DEFAULT_TIMEOUT = 30.0
SYSTEM_CONTAINERD = common_pb2.ContainerdInstance(driver=common_pb2.CRI, namespace=common_pb2.NS_SYSTEM)
"""The containerd instance talosctl pulls installer images into."""


class TalosClient:
    """Talos API client for one endpoint; see the module docstring for the two modes."""

    def __init__(
        self,
        endpoint: str,
        credentials: TalosContext | None = None,
        *,
        fingerprints: Sequence[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        split_endpoint(endpoint)
        self.endpoint = endpoint
        self.timeout = timeout
        self._credentials = credentials
        self._fingerprints = tuple(fingerprints)
        self._loop = asyncio.new_event_loop()
        self._channel: NodeChannel | None = None

    @property
    def maintenance(self) -> bool:
        """True for the unauthenticated maintenance-mode channel."""
        return self._credentials is None

    def __repr__(self) -> str:
        return f"TalosClient({self.endpoint!r}, {'maintenance' if self.maintenance else 'authenticated'})"

    def __enter__(self) -> TalosClient:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection and the client's event loop."""
        if self._loop.is_closed():
            return
        if self._channel is not None:
            self._loop.run_until_complete(self._channel.aclose())
            self._channel = None
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    # -- calls ---------------------------------------------------------------------------------------------

    def version(self, *, node: str | None = None) -> NodeVersion:
        """The node's Talos version, and whether it runs with a machine config."""
        return NodeVersion.from_message(self._one(methods.VERSION, empty_pb2.Empty(), node))

    def apply_configuration(
        self,
        config: str | bytes,
        *,
        mode: ApplyMode = "auto",
        dry_run: bool = False,
        try_timeout: timedelta | None = None,
        node: str | None = None,
    ) -> ApplyResult:
        """Send the whole (multi-document) machine config; the node validates it and answers how it applied it.

        In maintenance mode the node first has to show, on this very connection, that it has no config; the
        connection is then pinned to its certificate, so the config cannot go to another server.
        """
        request = machine_pb2.ApplyConfigurationRequest(
            data=config.encode() if isinstance(config, str) else config,
            mode=apply_mode_value(mode),  # type: ignore[arg-type]
            dry_run=dry_run,
        )
        if try_timeout is not None:
            request.try_mode_timeout.FromTimedelta(try_timeout)
        if self.maintenance:
            self._confirm_unconfigured(node)
        reply = self._one(methods.APPLY_CONFIGURATION, request, node)
        return ApplyResult(mode=apply_mode_name(reply.mode), details=reply.mode_details, warnings=tuple(reply.warnings))

    def bootstrap(self, *, node: str | None = None) -> None:
        """Bootstrap etcd on a control plane; AlreadyBootstrappedError if it was done before."""
        self._one(methods.BOOTSTRAP, machine_pb2.BootstrapRequest(), node)

    def kubeconfig(self, *, node: str | None = None) -> str:
        """An admin kubeconfig, freshly minted by a control plane. Secret: never log it."""
        chunks = self._call(methods.KUBECONFIG, empty_pb2.Empty(), node)
        for chunk in chunks:
            self._raise_for_metadata(methods.KUBECONFIG, chunk, node)
        return unpack_single_file(b"".join(chunk.bytes for chunk in chunks)).decode()

    def reboot(self, *, mode: Literal["default", "powercycle", "force"] = "default", node: str | None = None) -> str:
        """Reboot the node; returns the actor id of the reboot sequence.

        `powercycle` goes through the firmware (no kexec); `force` skips the orderly stop of services.
        """
        request = machine_pb2.RebootRequest(mode=machine_pb2.RebootRequest.Mode.Value(mode.upper()))
        reply = self._one(methods.REBOOT, request, node)
        return str(reply.actor_id)

    def upgrade(
        self,
        image: str,
        *,
        stage: bool = False,
        preserve: bool = False,
        force: bool = False,
        node: str | None = None,
    ) -> str:
        """MachineService/Upgrade (the pre-1.13 path, still served): install `image` and reboot; returns the ack.

        `stage` reboots first and installs on the way up. On a control plane the node first checks etcd (not
        two members, every member healthy) unless `force` or `preserve` is set.
        """
        request = machine_pb2.UpgradeRequest(image=image, stage=stage, preserve=preserve, force=force)
        return str(self._one(methods.UPGRADE, request, node).ack)

    def pull_image(self, image: str, *, node: str | None = None, progress: Progress = no_progress) -> str:
        """ImageService/Pull (1.13+) into the system containerd; returns the resolved image name."""
        request = image_pb2.ImageServicePullRequest(containerd=SYSTEM_CONTAINERD, image_ref=image)
        name = ""
        for reply in self._call(methods.IMAGE_PULL, request, node):
            if reply.WhichOneof("response") == "name":
                name = reply.name
            else:
                layer = reply.pull_progress
                progress(f"{node or self.endpoint}: pulling {image}: layer {layer.layer_id} {layer.progress.offset}B")
        return name or image

    def lifecycle_upgrade(self, image: str, *, node: str | None = None, progress: Progress = no_progress) -> None:
        """LifecycleService/Upgrade (1.13+): run the installer from a pulled `image`; the caller reboots after.

        The installer's output is reported line by line; a non-zero exit code raises InstallerFailedError.
        """
        request = lifecycle_pb2.LifecycleServiceUpgradeRequest(
            containerd=SYSTEM_CONTAINERD, source=lifecycle_pb2.InstallArtifactsSource(image_name=image)
        )
        exit_code, last = None, ""
        for reply in self._call(methods.LIFECYCLE_UPGRADE, request, node):
            if reply.progress.WhichOneof("response") == "exit_code":
                exit_code = reply.progress.exit_code
            else:
                last = reply.progress.message
                progress(f"{node or self.endpoint}: upgrade: {last}")
        if exit_code != 0:
            outcome = "ended without an exit code" if exit_code is None else f"exited with code {exit_code}"
            raise InstallerFailedError(
                node or self.endpoint, methods.LIFECYCLE_UPGRADE.name, Status.UNKNOWN, f"installer {outcome}: {last}"
            )

    def reset(
        self,
        *,
        graceful: bool = True,
        reboot: bool = True,
        wipe_labels: Sequence[str] | None = None,
        user_disks: Sequence[str] = (),
        node: str | None = None,
    ) -> str:
        """Reset the node: leave etcd first when `graceful`, then wipe and reboot (or power off).

        `wipe_labels` names system partitions (`STATE` holds the machine config, `EPHEMERAL` etcd and
        kubelet data); None wipes the whole system disk. `user_disks` are device paths (`/dev/sdb`) of other
        disks to wipe too; the node refuses unknown, read-only and system disks. Returns the reset's actor id.
        """
        partitions = [machine_pb2.ResetPartitionSpec(label=label, wipe=True) for label in wipe_labels or ()]
        request = machine_pb2.ResetRequest(
            graceful=graceful,
            reboot=reboot,
            system_partitions_to_wipe=partitions,
            user_disks_to_wipe=list(user_disks),
        )
        return str(self._one(methods.RESET, request, node).actor_id)

    def disks(self, *, node: str | None = None) -> list[Disk]:
        """The node's block devices (storage.StorageService/Disks)."""
        message = self._one(methods.DISKS, empty_pb2.Empty(), node)
        return [Disk.from_message(disk) for disk in message.disks]

    def service_list(self, *, node: str | None = None) -> list[ServiceStatus]:
        """The node's system services and their state."""
        message = self._one(methods.SERVICE_LIST, empty_pb2.Empty(), node)
        return [ServiceStatus.from_message(info) for info in message.services]

    def etcd_status(self, *, node: str | None = None) -> EtcdMemberStatus:
        """The local etcd member's status (control planes only)."""
        return EtcdMemberStatus.from_message(self._one(methods.ETCD_STATUS, empty_pb2.Empty(), node).member_status)

    def etcd_members(self, *, query_local: bool = False, node: str | None = None) -> list[EtcdMember]:
        """The etcd cluster's members as a control plane sees them."""
        request = machine_pb2.EtcdMemberListRequest(query_local=query_local)
        return [EtcdMember.from_message(m) for m in self._one(methods.ETCD_MEMBER_LIST, request, node).members]

    def etcd_leave_cluster(self, *, node: str | None = None) -> None:
        """Remove this control plane from etcd (as a graceful reset does first)."""
        self._one(methods.ETCD_LEAVE_CLUSTER, machine_pb2.EtcdLeaveClusterRequest(), node)

    def etcd_remove_member(self, member_id: int, *, node: str | None = None) -> None:
        """Remove a member that is gone for good; NotFoundError for an unknown id."""
        self._one(methods.ETCD_REMOVE_MEMBER, machine_pb2.EtcdRemoveMemberByIDRequest(member_id=member_id), node)

    def get_resource(self, namespace: str, type_: str, id_: str, *, node: str | None = None) -> Any:
        """One COSI resource (`talosctl get <type> <id>`), as a cosi.resource.Resource message."""
        request = state_pb2.GetRequest(namespace=namespace, type=type_, id=id_)
        return self._call(methods.RESOURCE_GET, request, node)[0].resource

    def list_resources(self, namespace: str, type_: str, *, node: str | None = None) -> list[Any]:
        """Every COSI resource of a type in a namespace."""
        request = state_pb2.ListRequest(namespace=namespace, type=type_)
        return [reply.resource for reply in self._call(methods.RESOURCE_LIST, request, node)]

    def machine_config(self, *, persistent: bool = False, node: str | None = None) -> str:
        """The machine config the node runs (or, `persistent`, the one on disk). Secret; needs os:admin."""
        resource = self.get_resource(*MACHINE_CONFIG, "persistent" if persistent else "v1alpha1", node=node)
        spec = config_pb2.MachineConfigSpec.FromString(resource.spec.proto_spec)
        return spec.yaml_marshalled.decode()

    def machine_status(self, *, node: str | None = None) -> MachineStatus:
        """The node's boot stage and readiness."""
        resource: resource_pb2.Resource = self.get_resource(*MACHINE_STATUS, node=node)
        spec = runtime_pb2.MachineStatusSpec.FromString(resource.spec.proto_spec)
        stage = enums_pb2.RuntimeMachineStage.Name(spec.stage)
        return MachineStatus(
            stage=stage.removeprefix("MACHINE_STAGE_").lower().replace("_", " "),
            ready=spec.status.ready,
            unmet_conditions=tuple(f"{c.name}: {c.reason}" for c in spec.status.unmet_conditions),
        )

    def meta_write(self, key: int, value: bytes, *, node: str | None = None) -> None:
        """Write one key of the node's META partition (a uint8; Talos leaves 0x0c-0x0e to users).

        Needs os:admin or os:meta:writer. META survives reboots, upgrades and STATE/EPHEMERAL wipes.
        """
        self._one(methods.META_WRITE, machine_pb2.MetaWriteRequest(key=key, value=value), node)

    def meta_delete(self, key: int, *, node: str | None = None) -> None:
        """Delete one META key; NotFoundError when it is not set."""
        self._one(methods.META_DELETE, machine_pb2.MetaDeleteRequest(key=key), node)

    def meta_value(self, key: int, *, node: str | None = None) -> str | None:
        """One META key's value as the MetaKeys resource shows it (`talosctl get meta`); None when unset."""
        try:
            resource = self.get_resource(*META_KEYS, f"0x{key:02x}", node=node)
        except NotFoundError:
            return None
        return runtime_pb2.MetaKeySpec.FromString(resource.spec.proto_spec).value

    def call_nodes(self, method: Method, request: Any, nodes: Sequence[str]) -> dict[str, Any]:
        """A one-to-many call through this endpoint's apid (`nodes` metadata).

        Returns each node's reply message, or the TalosApiError its entry carried; the RPC as a whole
        succeeds even when nodes fail, which is why every entry's metadata is checked.
        """
        if not method.one_to_many:
            raise ValueError(f"{method.path} cannot be proxied to several nodes (fix: call it per node with node=)")
        replies = self._run(self._acall(method, request, [("nodes", node) for node in nodes], None))
        results: dict[str, Any] = {}
        for message in (m for reply in replies for m in reply.messages):
            hostname = message.metadata.hostname or self.endpoint
            results[hostname] = self._metadata_error(method, message, hostname) or message
        return results

    def server_certificate(self) -> bytes | None:
        """DER of the certificate the node presented on the last connection (None before any call)."""
        return self._channel.peer_certificate() if self._channel else None

    # -- plumbing ------------------------------------------------------------------------------------------

    def _confirm_unconfigured(self, node: str | None) -> None:
        """Refuse to send a config in the clear unless the node shows it has none; then pin its certificate."""
        if self.version(node=node).configured:
            raise NodeConfiguredError(
                node or self.endpoint,
                methods.APPLY_CONFIGURATION.name,
                Status.FAILED_PRECONDITION,
                "the node already runs with a machine config; a config is only sent to it with the cluster's "
                "talosconfig (fix: use an authenticated client)",
            )
        self._run(self._pin())

    async def _pin(self) -> None:
        self._get_channel().pin_peer()

    def _one(self, method: Method, request: Any, node: str | None) -> Any:
        """The reply's single message, its metadata checked."""
        messages = [m for reply in self._call(method, request, node) for m in reply.messages]
        for message in messages:
            self._raise_for_metadata(method, message, node)
        if not messages:
            raise TalosApiError(node or self.endpoint, method.name, Status.UNKNOWN, "the reply holds no message")
        return messages[0]

    def _call(self, method: Method, request: Any, node: str | None) -> list[Any]:
        metadata = [("node", node)] if node else []
        return self._run(self._acall(method, request, metadata, None))

    async def _acall(
        self, method: Method, request: Any, metadata: list[tuple[str, str]], timeout: float | None
    ) -> list[Any]:
        # The loop sleeps between calls: let it notice first that the node closed an idle connection
        # (a reboot), so the call opens a new one instead of failing on the dead one.
        await asyncio.sleep(0.001)
        return await call(self._get_channel(), method, request, timeout=timeout or self.timeout, metadata=metadata)

    def _get_channel(self) -> NodeChannel:
        """The channel, created on first use inside the client's loop (grpclib binds it to the running loop)."""
        if self._channel is None:
            if self._credentials is None:
                context, presents = maintenance_context(), False
            else:
                context, presents = authenticated_context(self._credentials), True
            self._channel = NodeChannel(
                self.endpoint, context, presents_certificate=presents, fingerprints=self._fingerprints
            )
        return self._channel

    def _raise_for_metadata(self, method: Method, message: Any, node: str | None) -> None:
        error = self._metadata_error(method, message, message.metadata.hostname or node or self.endpoint)
        if error is not None:
            raise error

    @staticmethod
    def _metadata_error(method: Method, message: Any, node: str) -> TalosApiError | None:
        metadata = message.metadata
        if not metadata.error:
            return None
        try:
            status = Status(metadata.status.code)
        except ValueError:
            status = Status.UNKNOWN
        return error_for_status(node, method.name, status, metadata.error)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            coroutine.close()
            raise RuntimeError(f"{self!r} is closed")
        return self._loop.run_until_complete(coroutine)
