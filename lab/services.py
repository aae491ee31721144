"""The whole lab: Robot, Cloud, Image Factory and CDN on their own loopback addresses, and the datacenter.

`Lab(spec).start()` claims a lab network, starts every server and delivers the dedicated servers;
`reset()` restores a fresh datacenter (servers, disks, API state, faults); `stop()` tears everything down.
`to_json()` is what clients need: URLs, credentials, servers and their addresses.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from lab.cloud.app import CloudApp
from lab.cloud.catalog import Catalog
from lab.cloud.core import Actions, Ids
from lab.cloud.servers import Servers
from lab.cloud.ssh_keys import SshKeys
from lab.cloud.zones import Zones
from lab.datacenter import Datacenter, Machine, MachineSpec, register_boot_handler
from lab.delays import Delays
from lab.disks import DiskSpec
from lab.dns import DnsResponder
from lab.faults import Faults
from lab.httpserver import Endpoint, HttpServer
from lab.images.app import Cdn, ImageFactory
from lab.images.raw import DEFAULT_SCHEMATIC, ImageProfile, TalosImage
from lab.images.store import Artifact, ArtifactStore
from lab.net import LabNetwork, claim_network
from lab.robot.account import RobotAccount
from lab.robot.app import RobotApp
from lab.talos.boot import TalosBootHandler
from lab.talos.fabric import Fabric

CHECKOUT = Path(__file__).resolve().parents[1]
TALOS_VERSIONS = tuple(f"v1.12.{p}" for p in range(12)) + tuple(f"v1.13.{p}" for p in range(10))
NVME_512 = ("SAMSUNG MZVL2512HCJQ-00B00", 512110190592)
HDD_16T = ("TOSHIBA MG08ACA16TE", 16000900661248)


def nvme(index: int, number: int, model: tuple[str, int] = NVME_512) -> DiskSpec:
    """An NVMe disk of a dedicated server, with serial and EUI derived from the server number."""
    serial = f"S67{number % 100000:05d}N{index}"
    return DiskSpec(f"nvme{index}n1", model[1], model[0], serial, f"eui.002538b{number:08x}{index:x}", "nvme")


def sata_hdd(index: int, number: int, model: tuple[str, int] = HDD_16T) -> DiskSpec:
    """A SATA hard disk of a dedicated server."""
    name = "sd" + "abcdefgh"[index]
    return DiskSpec(
        name, model[1], model[0], f"71Q{number % 100000:05d}{index}", f"0x500003{number:09x}{index}", "sata", True
    )


def default_robot_servers() -> tuple[MachineSpec, ...]:
    """Issue 11's dedicated servers: two for control planes (AX41-NVMe), one worker (SX65, NVMe + HDDs)."""
    servers = []
    for number, name in ((2100001, "lab-dedicated-1"), (2100002, "lab-dedicated-2")):
        disks = (nvme(0, number), nvme(1, number))
        servers.append(MachineSpec("robot", number, name, "AX41-NVMe", "FSN1-DC14", disks))
    number = 2100003
    disks = (nvme(0, number), nvme(1, number), sata_hdd(0, number), sata_hdd(1, number))
    servers.append(MachineSpec("robot", number, "lab-dedicated-3", "SX65", "HEL1-DC7", disks))
    return tuple(servers)


@dataclass(frozen=True)
class LabSpec:
    """What a lab is made of. Credentials default to fresh random ones."""

    robot_servers: tuple[MachineSpec, ...] = field(default_factory=default_robot_servers)
    delays: Delays = field(default_factory=Delays.for_tests)
    image_profile: ImageProfile = field(default_factory=ImageProfile)
    talos_versions: tuple[str, ...] = TALOS_VERSIONS
    net: int | None = None
    """Second octet of the lab's addresses; None: pick a free one."""
    http_port: int = 0
    """Port of the HTTP services (0: any free port; 80 needs root)."""
    ssh_port: int = 22
    talos_port: int = 50000
    dns_port: int = 53
    robot_user: str = field(default_factory=lambda: "#ws+" + secrets.token_hex(4))
    robot_password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    cloud_token: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    """64 characters, as the hcloud Terraform provider insists."""
    state_dir: Path | None = None
    """Disks and rescue sandboxes; None: a temporary directory removed at stop."""
    cache_dir: Path = CHECKOUT / ".lab" / "cache" / "images"
    factory_checksums: bool = True
    robot_host_keys: bool = False


class Lab:
    """All lab services; a context manager."""

    def __init__(self, spec: LabSpec | None = None) -> None:
        self.spec = spec or LabSpec()
        self.faults = Faults()
        self.delays = self.spec.delays
        self.network: LabNetwork | None = None
        self.datacenter: Datacenter | None = None
        self._marker: socket.socket | None = None
        self._servers: dict[str, HttpServer] = {}
        self._state_dir: Path | None = None
        self.dns: DnsResponder | None = None
        self._owns_state = False

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Lab:
        spec = self.spec
        self.network, self._marker = claim_network(spec.net)
        self._owns_state = spec.state_dir is None
        self._state_dir = spec.state_dir or Path(tempfile.mkdtemp(prefix=f"lab-{self.network.net}-"))
        self._state_dir.mkdir(parents=True, exist_ok=True)
        datacenter = Datacenter(
            self.network, self._state_dir, self.delays, self.faults, ssh_port=spec.ssh_port, talos_port=spec.talos_port
        )
        self.datacenter = datacenter
        # A machine booting a Talos disk runs the lab's Talos node (real API, mTLS) on its address.
        self.talos = TalosBootHandler(Fabric(), self.delays.scale)
        register_boot_handler(self.talos)
        try:
            for machine_spec in spec.robot_servers:
                datacenter.add_robot_server(machine_spec)
            self._start_services()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_services(self) -> None:
        spec, network, datacenter = self.spec, self.network, self.datacenter
        assert network is not None and datacenter is not None
        self.account = RobotAccount(spec.robot_user, spec.robot_password)
        self.robot_app = RobotApp(
            datacenter, self.account, self.faults, self.delays, report_host_keys=spec.robot_host_keys
        )
        ids = Ids()
        actions = Actions(ids)
        ssh_keys = SshKeys(ids)
        self.cloud_servers = Servers(datacenter, ids, actions, ssh_keys, self.delays, self.faults)
        self.ssh_keys = ssh_keys
        self.zones = Zones(ids, actions, self.delays, self.faults)
        modules = [Catalog(), ssh_keys, self.cloud_servers, self.zones]
        self.cloud_app = CloudApp(spec.cloud_token, self.faults, ids, actions, modules)
        self.store = ArtifactStore(spec.cache_dir, spec.image_profile)
        self.factory_app = ImageFactory(self.store, spec.talos_versions, self.faults, checksums=spec.factory_checksums)
        self.cdn_app = Cdn(self.store, self.delays, self.faults)
        for name, app in (("robot", self.robot_app), ("cloud", self.cloud_app), ("cdn", self.cdn_app)):
            self._serve(name, app)
        self.factory_app.cdn_url = self.endpoint("cdn").base_url
        self._serve("factory", self.factory_app)
        self.dns = DnsResponder(self.zones, network.service("dns"), spec.dns_port)

    def _serve(self, name: str, app: Any) -> None:
        assert self.network is not None
        server = HttpServer(app, self.network.service(name), self.spec.http_port)
        self._servers[name] = server
        server.start()

    def set_delays(self, delays: Delays) -> None:
        """Use other simulated durations until the next reset (e.g. a long action to observe `locked`)."""
        assert self.datacenter is not None
        self.delays = delays
        for holder in (self.datacenter, self.robot_app, self.cloud_servers, self.zones, self.cdn_app):
            holder.delays = delays

    def reset(self) -> None:
        """A fresh datacenter: faults off, delays as specified, API state forgotten, Cloud servers gone,
        dedicated servers as delivered."""
        self.faults.clear()
        self.set_delays(self.spec.delays)
        self.robot_app.reset()
        self.cloud_app.reset()
        self.factory_app.reset()
        assert self.datacenter is not None
        self.datacenter.restore()
        self.talos.fabric = Fabric()

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        if self.datacenter is not None:
            self.datacenter.stop()
            register_boot_handler(None)
        if self._owns_state and self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
        if self._marker is not None:
            self._marker.close()
            self._marker = None

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- what clients need ------------------------------------------------------------------------

    def endpoint(self, name: str) -> Endpoint:
        """`robot`, `cloud`, `factory` or `cdn`."""
        return self._servers[name].endpoint

    @property
    def robot_url(self) -> str:
        return self.endpoint("robot").base_url

    @property
    def cloud_url(self) -> str:
        """The Cloud API endpoint, `/v1` included (hcloud `api_endpoint`, `hcloud:endpoint`)."""
        return self.endpoint("cloud").base_url + "/v1"

    @property
    def factory_url(self) -> str:
        return self.endpoint("factory").base_url

    def robot_server(self, number: int) -> Machine:
        assert self.datacenter is not None
        machine = self.datacenter.robot(number)
        if machine is None:
            raise KeyError(f"no dedicated server {number} in the lab")
        return machine

    def cloud_server(self, ident: int) -> Machine:
        assert self.datacenter is not None
        machine = self.datacenter.cloud(ident)
        if machine is None:
            raise KeyError(f"no Cloud server {ident} in the lab")
        return machine

    def image_url(
        self, version: str, *, schematic: str = DEFAULT_SCHEMATIC, fmt: str = ".raw.zst", platform: str = "metal"
    ) -> str:
        return f"{self.factory_url}/image/{schematic}/{version}/{platform}-amd64{fmt}"

    def artifact(
        self, version: str, *, schematic: str = DEFAULT_SCHEMATIC, fmt: str = ".raw.zst", platform: str = "metal"
    ) -> Artifact:
        """The artifact the factory serves for that URL (built if needed): size and checksums."""
        return self.store.get(TalosImage(version, schematic, platform), fmt)

    def to_json(self) -> dict[str, Any]:
        """URLs, credentials (secret: keep the file private), servers and timings."""
        assert self.datacenter is not None and self.network is not None
        servers = []
        for machine in sorted(self.datacenter.robot_machines(), key=lambda m: m.spec.ident):
            p = machine.placement
            servers.append(
                {
                    "kind": "robot",
                    "number": machine.spec.ident,
                    "name": machine.spec.name,
                    "product": machine.spec.product,
                    "address": p.address,
                    "gateway": p.gateway,
                    "prefix": p.prefix,
                    "ipv6_net": p.ipv6_net,
                    "disks": [
                        {
                            "name": d.name,
                            "size": d.size,
                            "model": d.model,
                            "serial": d.serial,
                            "wwn": d.wwn,
                            "by_id": list(d.by_id),
                        }
                        for d in machine.spec.disks
                    ],
                }
            )
        return {
            "net": self.network.net,
            "robot": {"url": self.robot_url, "user": self.spec.robot_user, "password": self.spec.robot_password},
            "cloud": {"url": self.cloud_url, "token": self.spec.cloud_token},
            "image_factory": {"url": self.factory_url, "default_schematic": DEFAULT_SCHEMATIC},
            "cdn": {"url": self.endpoint("cdn").base_url},
            "dns": {"address": self.dns.address[0], "port": self.dns.address[1]} if self.dns else None,
            "ssh_port": self.spec.ssh_port,
            "talos_port": self.spec.talos_port,
            "talos_versions": list(self.spec.talos_versions),
            "servers": servers,
            "delays": self.delays.to_dict(),
        }

    def write_json(self, path: Path) -> None:
        """Write `to_json()` with owner-only permissions (it holds the lab's credentials)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
