"""A lab Talos machine: boots from its storage, serves apid on `<address>:50000`, runs Talos' sequences.

The node lives on its own asyncio loop in a thread; its state is only touched there. Other threads drive it
through `power_on`, `power_off`, the fault switches and `wait_for`. Physical durations come from
`NodeTimings`; a boot, an install and a shutdown each take their time, during which the API is down
(connections refused), as on a real machine.

Boot: no Talos image on the system disk -> the node never answers. A machine config on STATE -> configured
mode (apid with mTLS from the config's OS CA), else maintenance mode (self-signed certificate). The
operations below are what the API handlers (lab.talos.api) call once a request is authorised.

A control plane whose etcd runs (bootstrapped, or joined) also serves the lab's Kubernetes API on
`<address>:6443` (lab.kubernetes), listing its cluster's nodes, NotReady as without a CNI; it stops with etcd,
on a reboot, a reset or a power-off.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import Encoding
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from lab.images.raw import TalosImage
from lab.kubernetes import API_PORT, KubernetesApi
from lab.talos.certs import admin_kubeconfig, apid_certificate, maintenance_certificate
from lab.talos.fabric import EtcdMemberRecord, Fabric
from lab.talos.kubernetes_components import KubernetesComponents
from lab.talos.machineconfig import ConfigRejected, MachineConfig, accept_config
from lab.talos.server import ApiListener
from lab.talos.stages import EtcdState, Stage
from lab.talos.storage import NodeStorage
from talos.api.tls import spki_fingerprint
from talos.pki import CertAndKey

APID_PORT = 50000
_JOIN_POLL = 0.05
META_DATA_LENGTH = 256 * 1024 - 40
"""Talos' META (ADV) data area: one 256 KiB copy less magics and checksum; the partition holds two copies."""
META_OVERHEAD, META_TAG_OVERHEAD = 20, 8


@dataclass(frozen=True)
class NodeTimings:
    """Simulated seconds for what a Talos machine does physically."""

    boot: float = 0.3
    """Power on or reset until apid answers (firmware, kernel, machined)."""
    shutdown: float = 0.05
    """Orderly stop before a reboot or power off."""
    install: float = 0.1
    """The installer writing the system disk (maintenance apply, upgrade)."""
    services: float = 0.05
    """apid up until containerd/CRI/kubelet run and etcd starts preparing."""
    etcd: float = 0.2
    """etcd start until it reports healthy."""

    @property
    def apply_to_configured(self) -> float:
        """From a config applied in maintenance mode until apid answers with mTLS: install, shutdown, boot."""
        return self.install + self.shutdown + self.boot

    @classmethod
    def in_datacenter(cls, scale: float) -> NodeTimings:
        """For a node on a datacenter machine: the machine times boots and shutdowns, the node only Talos'
        own steps (real-world estimates times the lab's `Delays.scale`)."""
        return cls(boot=0.0, shutdown=0.0, install=20.0 * scale, services=5.0 * scale, etcd=10.0 * scale)


class TalosNode:
    """One lab Talos machine at `address`; see the module docstring."""

    def __init__(
        self,
        address: str,
        storage: NodeStorage,
        *,
        hostname: str | None = None,
        timings: NodeTimings | None = None,
        fabric: Fabric | None = None,
        port: int = APID_PORT,
        power: Callable[[str], None] | None = None,
    ) -> None:
        """`power` is the machine's `os_power`: with it, reboots and power-offs go through the datacenter
        (which stops this node and boots a new one from the disk); without it the node simulates them."""
        self.address, self.port, self.storage, self.power = address, port, storage, power
        self.default_hostname = hostname or "talos-" + uuid.uuid5(uuid.NAMESPACE_DNS, address).hex[:7]
        self.timings = timings or NodeTimings()
        self.fabric = fabric or Fabric()
        self.stage = Stage.OFF
        self.image: TalosImage | None = None
        self.system_disk: str | None = None
        self.config: MachineConfig | None = None
        self.services_up = False
        self.etcd_state = EtcdState.NONE
        self.apply_rebooting = False
        self.staged_image: TalosImage | None = None
        self.pulled_images: set[str] = set()
        self.kubernetes: KubernetesApi | None = None
        """The Kubernetes API this control plane serves while its etcd runs."""
        self.kubernetes_port = API_PORT
        self.components = KubernetesComponents(self)
        """The static pods and kubelet this node runs (lab.talos.kubernetes_components)."""
        self.maintenance_cert: CertAndKey | None = None
        self._issuer: CertAndKey | None = None
        self.apid_cert: CertAndKey | None = None
        self.boots = 0
        self.sequences: list[str] = []
        """The sequences the API started, named as Talos' SequenceEvents name them (`reboot`, `upgrade`,
        `stageUpgrade`); a reboot in another mode than the default notes it: `reboot(powercycle)`."""
        self._slow_boot = 0.0
        self.drop_streams = 0
        self.stall = 0.0
        self.without_cni = False
        """Report Talos' `nodeReady` condition unmet while the kubelet runs, as a cluster without a CNI does."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = threading.Condition()
        self._closing = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"talos-node-{address}", daemon=True)
        self._thread.start()
        self.listener = ApiListener(self)
        self.fabric.attach(self)

    def __repr__(self) -> str:
        return f"TalosNode({self.address}, {self.stage.value})"

    # -- control from any thread ----------------------------------------------------------------------------

    def power_on(self) -> None:
        """Press the power button: boot from the system disk (no-op when already on)."""
        self._on_loop(self._power_on())

    def power_off(self) -> None:
        """Cut the power at once: the API goes away, running sequences stop, storage stays."""
        self._on_loop(self._power_off())

    def close(self) -> None:
        """Power off and stop the node's thread (once; later calls do nothing)."""
        with self._closing:
            if self.loop.is_closed():
                return
            self._close()

    def _close(self) -> None:
        self.power_off()
        self.fabric.detach(self)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def wait_for(self, predicate: Callable[[TalosNode], bool], timeout: float = 10.0) -> None:
        """Block until `predicate(node)` holds (checked on every state change); TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), timeout=timeout):
                raise TimeoutError(f"{self!r}: condition not reached within {timeout:g}s")

    def refuse_connections(self, seconds: float) -> None:
        """Fault: close the API port for `seconds` (connections are refused), then open it again."""
        self._on_loop(self.listener.refuse_for(seconds))

    def slow_next_boot(self, extra: float) -> None:
        """Fault: the next boot takes `extra` seconds longer."""
        self._slow_boot += extra

    def stall_next_call(self, seconds: float) -> None:
        """Fault: the next call is answered only after `seconds` (a node that hangs)."""
        self.stall = seconds

    def drop_next_stream(self) -> None:
        """Fault: the next server-streaming reply is cut after its first message (connection aborted)."""
        self.drop_streams += 1

    @property
    def maintenance_fingerprint(self) -> str | None:
        """SPKI fingerprint of the maintenance certificate, as the node's console shows it."""
        cert = self.maintenance_cert
        return spki_fingerprint(cert.certificate().public_bytes(Encoding.DER)) if cert and self.config is None else None

    # -- state as the API sees it (loop thread) -----------------------------------------------------------

    @property
    def hostname(self) -> str:
        return (self.config.hostname if self.config else None) or self.default_hostname

    @property
    def maintenance(self) -> bool:
        return self.config is None

    @property
    def control_plane(self) -> bool:
        return self.config is not None and self.config.control_plane

    @property
    def version(self) -> str:
        return self.image.version if self.image else ""

    def ready(self) -> bool:
        """MachineStatus.status.ready: services up, and etcd healthy on a control plane."""
        if self.stage is not Stage.RUNNING or not self.services_up:
            return False
        return not self.control_plane or self.etcd_state is EtcdState.HEALTHY

    def etcd_cluster_id(self) -> str:
        assert self.config is not None
        return self.config.cluster_id

    # -- operations (loop thread; raise GRPCError as Talos does) ------------------------------------------

    def apply_config(self, config: MachineConfig, mode: str, try_timeout: float = 60.0) -> None:
        """Take an accepted config in a mode already resolved: reboot, no-reboot, staged or try."""
        if self.maintenance:
            # Saved whatever the mode (try included); the node keeps serving maintenance mode until it goes
            # down to install, and boots with the config from STATE. (Talos keeps a `try` config active only,
            # unsaved; the lab, whose maintenance apply always installs and reboots, saves it to boot with it.)
            self.storage.write_state(config.raw)
            if mode != "staged":
                self._spawn(self._restart(Stage.INSTALLING, self._install_current))
            return
        if mode in ("reboot", "no-reboot", "staged"):
            self.storage.write_state(config.raw)
        if mode == "reboot":
            self.apply_rebooting = True
            self._spawn(self._restart(Stage.REBOOTING))
        elif mode in ("no-reboot", "try"):
            self._activate(config)
            if mode == "try":
                self._spawn(self._roll_back_after(try_timeout))
        self._notify()

    def validate(self, raw: bytes) -> MachineConfig:
        """The config as this node accepts it; GRPCError InvalidArgument otherwise."""
        try:
            return accept_config(raw, self.version, self.storage.devices(), installing=self.maintenance)
        except ConfigRejected as err:
            raise GRPCError(Status.INVALID_ARGUMENT, str(err)) from None

    def bootstrap(self) -> None:
        """Start etcd as a new cluster (Talos' checks in order: services, machine type, data directory)."""
        if self.config is not None:
            self.fabric.record_bootstrap_call(self.etcd_cluster_id())
        if not self.services_up:
            raise GRPCError(Status.FAILED_PRECONDITION, "bootstrap is not available yet")
        self.require_control_plane("bootstrap")
        if self.storage.etcd_data():
            raise GRPCError(Status.ALREADY_EXISTS, "etcd data directory is not empty")
        self.fabric.bootstrap(self.etcd_cluster_id(), self.hostname, self.address)
        self.storage.set_etcd_data(True)
        self._spawn(self._start_etcd())

    def meta_write(self, key: int, value: bytes) -> None:
        """MetaWrite, as Talos' machined checks it: a uint8 key, and the whole META within its 256 KiB area."""
        tags = self.storage.read_meta()
        tags[_meta_key(key)] = value
        if META_OVERHEAD + sum(len(v) + META_TAG_OVERHEAD for v in tags.values()) > META_DATA_LENGTH:
            raise GRPCError(Status.RESOURCE_EXHAUSTED, "meta write failed")
        self.storage.write_meta(tags)

    def meta_delete(self, key: int) -> None:
        tags = self.storage.read_meta()
        if tags.pop(_meta_key(key), None) is None:
            raise GRPCError(Status.NOT_FOUND, "meta key not found")
        self.storage.write_meta(tags)

    def leave_etcd(self) -> None:
        """EtcdLeaveCluster: remove this member, stop etcd and clear its data until the next boot."""
        self.require_control_plane("etcd leave")
        self._require_etcd_running("failed to create etcd client")
        refusal = self._leave_refusal()
        if refusal is not None:
            raise GRPCError(Status.UNKNOWN, f"failed to leave cluster: {refusal}")
        self.fabric.leave(self.etcd_cluster_id(), self.hostname)
        self.storage.set_etcd_data(False)
        self.etcd_state = EtcdState.NONE
        self._stop_kubernetes()
        self._notify()

    def _leave_refusal(self) -> str | None:
        """etcd's refusal to remove this member, worded as Talos' LeaveCluster reports it (Talos first retries
        "unhealthy cluster" for up to 5 minutes; the lab fails at once)."""
        member = self.fabric.etcd(self.etcd_cluster_id()).members.get(self.hostname)
        if member is None:
            return None  # not a member (any more): etcd answers "member not found", which Talos takes as done
        refusal = self.fabric.removal_refusal(self.etcd_cluster_id(), member.id, by=self.hostname)
        return None if refusal is None else f"failed to remove member {member.id}: {refusal}"

    def require_control_plane(self, api: str) -> None:
        if self.config is None:
            raise GRPCError(Status.UNIMPLEMENTED, f"machine type is not set, cannot use {api} API")
        if not self.config.control_plane:
            raise GRPCError(Status.UNIMPLEMENTED, f"{api} is only available on control plane nodes")

    def kubeconfig(self) -> str:
        self.require_control_plane("kubeconfig")
        assert self.config is not None
        return admin_kubeconfig(
            self.config.cluster_name,
            self.config.endpoint,
            self.config.kubernetes_ca,
            self.config.kubernetes_accepted_cas,
            self.config.kubeconfig_lifetime,
        )

    def etcd_members(self) -> list[EtcdMemberRecord]:
        self.require_control_plane("member list")
        self._require_etcd_running("failed to create etcd client")
        return list(self.fabric.etcd(self.etcd_cluster_id()).members.values())

    def etcd_status(self) -> tuple[EtcdMemberRecord, int]:
        """(this member, the leader's id)."""
        self.require_control_plane("etcd status")
        self._require_etcd_running("failed to query etcd status")
        cluster = self.fabric.etcd(self.etcd_cluster_id())
        member = cluster.members.get(self.hostname)
        if member is None:
            raise GRPCError(Status.UNKNOWN, "failed to query etcd status: etcdserver: member not found")
        return member, cluster.leader

    def reboot(self, mode: str = "default") -> str:
        """Reboot; `mode` as RebootRequest names it (`powercycle` skips kexec, `force` the orderly stop in
        Talos; the lab only records it in `sequences`)."""
        self.sequences.append("reboot" if mode == "default" else f"reboot({mode})")
        work = self._install_staged if self.staged_image else None
        self._spawn(self._restart(Stage.REBOOTING, work))
        return str(uuid.uuid4())

    def upgrade(self, image: TalosImage, *, stage: bool) -> str:
        """Install `image` and reboot into it (staged: reboot first, install on the way; same outcome here)."""
        self.sequences.append("stageUpgrade" if stage else "upgrade")
        self.staged_image = image
        self._spawn(self._restart(Stage.REBOOTING if stage else Stage.UPGRADING, self._install_staged))
        return str(uuid.uuid4())

    async def install_image(self, image: TalosImage) -> None:
        """LifecycleService/Upgrade: run the installer now; the new Talos boots on the next reboot."""
        await asyncio.sleep(self.timings.install)
        self.storage.install(image)

    def reset(self, *, graceful: bool, reboot: bool, labels: list[str] | None) -> str:
        """Leave etcd (graceful), wipe the given system partitions (None: the whole disk), reboot or power off.

        As Talos' reset sequence: the graceful `leave` phase runs only while etcd runs (after EtcdLeaveCluster it
        has no data and is skipped); when etcd refuses the removal the sequence fails there and the node keeps
        running unreset, while the call itself has already succeeded."""
        if graceful and self.control_plane and self.etcd_state in (EtcdState.STARTING, EtcdState.HEALTHY):
            if self._leave_refusal() is not None:
                return str(uuid.uuid4())
            self.fabric.leave(self.etcd_cluster_id(), self.hostname)

        async def wipe() -> None:
            if labels is None:
                self.storage.wipe_system_disk()
            if labels and "STATE" in labels:
                self.storage.write_state(None)
            if labels and "EPHEMERAL" in labels:
                self.storage.set_etcd_data(False)
            if labels and "META" in labels:
                self.storage.write_meta({})

        self._spawn(self._restart(Stage.RESETTING, wipe, power_off=not reboot))
        return str(uuid.uuid4())

    def set_stage(self, stage: Stage) -> None:
        self.stage = stage
        self._notify()

    # -- sequences (loop thread) --------------------------------------------------------------------------

    async def _power_on(self) -> None:
        if self.stage is Stage.OFF:
            self._spawn(self._boot())

    async def _power_off(self) -> None:
        await self._cancel_background()
        await self.listener.stop()
        self._forget_runtime()
        self.set_stage(Stage.OFF)

    async def _boot(self) -> None:
        """Boot from storage; the time spent loading the saved config counts towards the simulated boot."""
        self._forget_runtime()
        self.set_stage(Stage.BOOTING)
        extra, self._slow_boot = self._slow_boot, 0.0
        up_at = self.loop.time() + self.timings.boot + extra
        booted = self.storage.boot_image()
        config = self._saved_config(booted[1].version) if booted else None
        await asyncio.sleep(max(0.0, up_at - self.loop.time()))
        if booted is None:
            self.set_stage(Stage.OFF)  # the firmware finds nothing to boot: the machine never answers
            return
        (self.system_disk, self.image), self.config = booted, config
        self.boots += 1
        self._notify()
        if self.config is None:
            self.maintenance_cert = maintenance_certificate([self.address], self.hostname)
            await self.listener.serve()
            self.set_stage(Stage.MAINTENANCE)
            return
        self._issuer = await self._certificate_authority(self.config)
        self.apid_cert = apid_certificate(self._issuer, [self.address], self.hostname, self.config.cert_sans)
        await self.listener.serve()
        self._notify()
        self._spawn(self._start_services())

    def _saved_config(self, version: str) -> MachineConfig | None:
        """The machine config on STATE, if there is one Talos accepts."""
        persisted = self.storage.read_state()
        if persisted is None:
            return None
        try:
            return accept_config(persisted, version, self.storage.devices(), installing=False)
        except ConfigRejected:
            return None

    async def _start_services(self) -> None:
        await asyncio.sleep(self.timings.services)
        self.services_up = True
        self.components.start(self.config)  # type: ignore[arg-type]
        if self.control_plane:
            if self.storage.etcd_data():
                self._spawn(self._start_etcd())
            else:
                self.etcd_state = EtcdState.PREPARING
                self._spawn(self._join_etcd())
        self.set_stage(Stage.RUNNING)

    async def _join_etcd(self) -> None:
        """etcd waits in Preparing until some control plane of the cluster is bootstrapped, then joins; when this
        node is the one bootstrapped, Bootstrap starts its etcd and the wait ends (etcd starts once)."""
        while self.fabric.join(self.etcd_cluster_id(), self.hostname, self.address) is None:
            await asyncio.sleep(_JOIN_POLL)
        if self.storage.etcd_data():
            return
        self.storage.set_etcd_data(True)
        await self._start_etcd()

    async def _start_etcd(self) -> None:
        """Run etcd from its data directory: a member of its cluster (re-created when the lab forgot it)."""
        if self.fabric.join(self.etcd_cluster_id(), self.hostname, self.address) is None:
            self.fabric.bootstrap(self.etcd_cluster_id(), self.hostname, self.address)
        self.etcd_state = EtcdState.STARTING
        self._notify()
        await asyncio.sleep(self.timings.etcd)
        self.etcd_state = EtcdState.HEALTHY
        self._start_kubernetes()
        self._notify()

    def _start_kubernetes(self) -> None:
        """kube-apiserver comes up once etcd runs: TLS from the cluster's Kubernetes CA, the cluster's nodes."""
        assert self.config is not None
        self._stop_kubernetes()
        endpoint_host = urlsplit(self.config.endpoint).hostname
        names = [name for name in (endpoint_host, self.address, *self.config.api_server_sans) if name]
        self.kubernetes = KubernetesApi(
            self.address,
            self.kubernetes_port,
            ca=self.config.kubernetes_ca,
            server_names=names,
            nodes=functools.partial(self.fabric.kubernetes_nodes, self.etcd_cluster_id()),
            pods=functools.partial(self.fabric.kubernetes_pods, self.etcd_cluster_id()),
            workloads=self.fabric.workloads(self.etcd_cluster_id()),
            version=self._apiserver_version,
        )
        self.kubernetes.start()

    def _stop_kubernetes(self) -> None:
        api, self.kubernetes = self.kubernetes, None
        if api is not None:
            api.stop()

    def _apiserver_version(self) -> str:
        """The version kube-apiserver runs here (its image's tag), asked by the API on each GET /version."""
        config = self.config
        return self.components.version("kube-apiserver") or (config.kubernetes_version if config else "")

    async def _restart(
        self, stage: Stage, work: Callable[[], Awaitable[None]] | None = None, *, power_off: bool = False
    ) -> None:
        """Stop the API and everything running, do `work`, shut down, then boot again (or stay off)."""
        self.set_stage(stage)
        await self._cancel_background()
        await self.listener.stop()
        if work is not None:
            await work()
        if self.power is not None:
            action = "poweroff" if power_off else "reboot"
            threading.Thread(target=self.power, args=(action,), name=f"talos-{action}-{self.address}").start()
            return
        await asyncio.sleep(self.timings.shutdown)
        self._forget_runtime()
        if power_off:
            self.set_stage(Stage.OFF)
        else:
            await self._boot()

    async def _install_current(self) -> None:
        await asyncio.sleep(self.timings.install)

    async def _install_staged(self) -> None:
        image, self.staged_image = self.staged_image, None
        if image is not None:
            await self.install_image(image)

    def _activate(self, config: MachineConfig) -> None:
        """Run `config` from now on; a changed OS CA or SANs re-issue apid's certificate and restart it."""
        before, self.config = self.config, config
        self.components.reconfigure(config)
        if before is None or (config.os_ca, config.accepted_cas, config.cert_sans) != (
            before.os_ca,
            before.accepted_cas,
            before.cert_sans,
        ):
            issuer = config.os_ca if config.os_ca.key else self._issuer
            self.apid_cert = apid_certificate(issuer, [self.address], self.hostname, config.cert_sans)
            self._spawn(self._restart_api())

    async def _certificate_authority(self, config: MachineConfig) -> CertAndKey:
        """The OS CA with its key: a control plane has it; a worker's apid waits for trustd on a control plane
        of its cluster (machine.token must match) to sign its certificate."""
        while not config.os_ca.key:
            issuer = self.fabric.trustd(config.os_ca.crt, config.machine.get("token"))
            if issuer is not None:
                return issuer
            await asyncio.sleep(_JOIN_POLL)
        return config.os_ca

    async def _restart_api(self) -> None:
        await self.listener.stop()
        await self.listener.serve()

    async def _roll_back_after(self, seconds: float) -> None:
        """`try` mode: after the timeout the node goes back to the config saved on STATE."""
        await asyncio.sleep(seconds)
        saved = self._saved_config(self.version)
        if saved is not None:
            self._activate(saved)
            self._notify()

    def _require_etcd_running(self, what: str) -> None:
        if self.etcd_state not in (EtcdState.STARTING, EtcdState.HEALTHY):
            raise GRPCError(Status.UNKNOWN, f"{what}: dial tcp 127.0.0.1:2379: connect: connection refused")

    def _forget_runtime(self) -> None:
        """What a power cycle loses: the running config, services, etcd, pulled images, pending flags."""
        self._stop_kubernetes()
        self.config = None
        self.services_up = False
        self.components.stop()
        self.etcd_state = EtcdState.NONE
        self.apply_rebooting = False
        self.pulled_images.clear()
        self.maintenance_cert = self.apid_cert = None

    # -- plumbing -----------------------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_background(self) -> None:
        """Stop every running sequence but the caller's, and wait until they are gone."""
        others = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _on_loop(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)


def _meta_key(key: int) -> int:
    if not 0 <= key <= 0xFF:
        raise GRPCError(Status.INVALID_ARGUMENT, "key must be a uint8")
    return key
