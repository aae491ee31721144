"""The Talos API methods this project speaks, read from the generated service descriptors.

One table serves both ends: the client looks up request/reply classes by path, the lab node registers its
handlers under the same paths. Paths are `/<package>.<Service>/<Method>` exactly as Talos serves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from grpclib.const import Cardinality

from talos.api.gen.machine import image_pb2, lifecycle_pb2, machine_pb2
from talos.api.gen.storage import storage_pb2
from talos.api.gen.v1alpha1 import state_pb2

ONE_TO_MANY_SERVICES = (
    "/machine.MachineService/",
    "/cluster.ClusterService/",
    "/inspect.InspectService/",
    "/storage.StorageService/",
    "/time.TimeService/",
)
"""Path prefixes apid proxies to several nodes (`nodes` metadata); others take `node` only."""


@dataclass(frozen=True)
class Method:
    """One RPC: its path, message classes and whether the server streams the reply."""

    path: str
    request: Any
    reply: Any
    server_streaming: bool

    @property
    def name(self) -> str:
        """The bare method name (`Version`), as errors name the call."""
        return self.path.rsplit("/", 1)[1]

    @property
    def cardinality(self) -> Cardinality:
        return Cardinality.UNARY_STREAM if self.server_streaming else Cardinality.UNARY_UNARY

    @property
    def one_to_many(self) -> bool:
        """Whether apid accepts `nodes` metadata for this method."""
        return self.path.startswith(ONE_TO_MANY_SERVICES)


def _methods(*services: ServiceDescriptor) -> dict[str, Method]:
    table = {}
    for service in services:
        for rpc in service.methods:
            path = f"/{service.full_name}/{rpc.name}"
            table[path] = Method(
                path=path,
                request=message_factory.GetMessageClass(rpc.input_type),
                reply=message_factory.GetMessageClass(rpc.output_type),
                server_streaming=rpc.server_streaming,
            )
    return table


METHODS = _methods(
    machine_pb2.DESCRIPTOR.services_by_name["MachineService"],
    lifecycle_pb2.DESCRIPTOR.services_by_name["LifecycleService"],
    image_pb2.DESCRIPTOR.services_by_name["ImageService"],
    storage_pb2.DESCRIPTOR.services_by_name["StorageService"],
    state_pb2.DESCRIPTOR.services_by_name["State"],
)

APPLY_CONFIGURATION = METHODS["/machine.MachineService/ApplyConfiguration"]
BOOTSTRAP = METHODS["/machine.MachineService/Bootstrap"]
ETCD_LEAVE_CLUSTER = METHODS["/machine.MachineService/EtcdLeaveCluster"]
ETCD_MEMBER_LIST = METHODS["/machine.MachineService/EtcdMemberList"]
ETCD_REMOVE_MEMBER = METHODS["/machine.MachineService/EtcdRemoveMemberByID"]
ETCD_STATUS = METHODS["/machine.MachineService/EtcdStatus"]
KUBECONFIG = METHODS["/machine.MachineService/Kubeconfig"]
META_DELETE = METHODS["/machine.MachineService/MetaDelete"]
META_WRITE = METHODS["/machine.MachineService/MetaWrite"]
REBOOT = METHODS["/machine.MachineService/Reboot"]
RESET = METHODS["/machine.MachineService/Reset"]
SERVICE_LIST = METHODS["/machine.MachineService/ServiceList"]
UPGRADE = METHODS["/machine.MachineService/Upgrade"]
VERSION = METHODS["/machine.MachineService/Version"]
LIFECYCLE_UPGRADE = METHODS["/machine.LifecycleService/Upgrade"]
IMAGE_PULL = METHODS["/machine.ImageService/Pull"]
DISKS = METHODS["/storage.StorageService/Disks"]
RESOURCE_GET = METHODS["/cosi.resource.State/Get"]
RESOURCE_LIST = METHODS["/cosi.resource.State/List"]
