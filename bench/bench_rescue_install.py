"""RescueInstall on the lab: install wall time against the lab's unavoidable time, and the provider's peak memory.

    .venv/bin/python -m bench.bench_rescue_install                  # x0.25 delays, 10 MB/s, 1 run each (~3 min)
    .venv/bin/python -m bench.bench_rescue_install --scale 0.05 --runs 3 --kinds cloud --sizes "100 MiB"

Needs root (the lab's rescue sandbox). For a 100 MiB and a 1 GiB raw image (one lab each, same delays), a Robot
server and a Cloud server are installed by `pulumi up`'s Check + Create, sent to the provider in its own
`python -m pulumi.dynamic` process (tests/providers/harness.py); every install gets a fresh process, which has
answered one Check before the clock starts (its imports are paid once per `pulumi up`, printed apart).

- ratio = wall time of Check + Create / `delays.unavoidable_install(kind, artifact size)`: reset into rescue,
  download at the lab's bandwidth, reboot into Talos. Goal <= 1.10.
- peak = the provider process's VmHWM after the install; it must not grow with the image.
- the time above the unavoidable, split at the machine's phase changes (same monotonic clock as the lab):
  `api` Check, probe and API calls up to the reset (Cloud: the enable_rescue action included); `lab` the lab's
  own time beyond its simulated boots (starting the rescue sandbox and the Talos node); `ssh` rescue up until
  the provider is logged in and has proved it is rescue; `rescue` in rescue beyond the download (disk
  inventory, checksum, write, flush, the lab stopping the sandbox on `reboot`); `talos` Talos up until Create
  returned. The default bandwidth keeps the 1 GiB stream under the loop disk's ~18 MB/s (docs/lab.md). The
  default scale gives a Cloud server 9.75 s from reset to Talos: at x0.05 (2 s) the ~0.7 s an install costs
  in any case (SSH logins and commands, polls) cannot fit in 10 %; see docs/lab.md, "Install benchmark".
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcloud
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType

from lab.datacenter import Machine, Phase
from lab.delays import Delays
from lab.gpt import MIB
from lab.images.raw import ImageProfile
from lab.services import Lab, LabSpec
from providers.rescue_install import RescueInstallProvider
from tests.providers.harness import ProviderServer, ResourceDriver, provider_server
from tests.providers.test_rescue_install import TYPE, lab_config

VERSION = "v1.13.9"
ROBOT = 2100001
SECRET_KEYS = ("talos-hetzner:robotPassword", "hcloud:token", "talos-hetzner:rescueSshKey")
GOAL = 1.10
SIZES = {"100 MiB": 100 * MIB, "1 GiB": 1024 * MIB}
WAIT = 3600.0
"""Seconds any one step may take before the bench gives up."""


@dataclass(frozen=True)
class Run:
    """One install: seconds (wall, unavoidable, where the rest went) and the provider's memory in KiB."""

    wall: float
    unavoidable: float
    overhead: dict[str, float]
    provider_start: float
    """The provider's first Check (its imports), before the clock."""
    peak_kib: int

    @property
    def ratio(self) -> float:
        return self.wall / self.unavoidable


class PhaseClock(threading.Thread):
    """Records when the machine is reset, has rescue up, is told to reboot, and runs Talos."""

    STEPS = (("reset", Phase.POST), ("rescue", Phase.RESCUE), ("reboot", Phase.SHUTTING_DOWN), ("talos", Phase.OS))

    def __init__(self, machine: Machine) -> None:
        super().__init__(daemon=True)
        self.machine = machine
        self.at: dict[str, float] = {}

    def run(self) -> None:
        for name, phase in self.STEPS:
            try:
                self.machine.wait_phase(phase, timeout=WAIT)
            except TimeoutError:
                return
            self.at[name] = time.monotonic()


def peak_memory_kib(server: ProviderServer) -> int:
    """VmHWM of the provider process (the harness keeps the process private; /proc is the way to its memory)."""
    pid = server._proc.pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def cloud_machine(lab: Lab) -> Machine:
    """A new Cloud server running its OS, as a user's freshly created server is."""
    client = hcloud.Client(lab.spec.cloud_token, api_endpoint=lab.cloud_url)
    created = client.servers.create(
        "cp-2", server_type=ServerType(name="cx23"), image=Image(name="debian-12"), location=Location(name="fsn1")
    )
    machine = lab.cloud_server(int(created.server.id or 0))
    machine.wait_phase(Phase.OS, timeout=WAIT)
    return machine


def install_inputs(lab: Lab, kind: str, machine: Machine) -> dict[str, Any]:
    return {
        "node": f"{kind}-1",
        "server": {"kind": kind, "id": machine.spec.ident},
        "address": machine.address,
        "sshPort": lab.spec.ssh_port,
        "talosPort": lab.spec.talos_port,
        "image": {"version": VERSION, "factoryUrl": lab.factory_url},
        "disk": {"serial": machine.spec.disks[0].serial} if kind == "robot" else {},
        "wipe": "refuse" if kind == "robot" else "any",  # a Cloud server's disk holds its OS
        "timeouts": {"rescue": WAIT, "install": WAIT, "boot": WAIT, "resetAttempts": 1},
    }


def overhead(lab: Lab, kind: str, size: int, at: dict[str, float], logged_in: float, ended: float) -> dict[str, float]:
    """The wall time beyond the unavoidable, split at the machine's phase changes (see the module docstring)."""
    t = lab.delays.timings(kind)
    rescue_boot, disk_boot = t.post + t.rescue_boot, t.shutdown + t.post + t.os_boot
    return {
        "api": at["reset"] - at["started"],
        "lab": (at["rescue"] - at["reset"] - rescue_boot) + (at["talos"] - at["reboot"] - disk_boot),
        "ssh": logged_in - at["rescue"],
        "rescue": at["reboot"] - logged_in - lab.delays.transfer(size),
        "talos": ended - at["talos"],
    }


def install(lab: Lab, kind: str, log: Path) -> Run:
    """One install on a fresh datacenter, in a fresh provider process."""
    lab.reset()
    machine = lab.robot_server(ROBOT) if kind == "robot" else cloud_machine(lab)
    inputs = install_inputs(lab, kind, machine)
    size = lab.artifact(VERSION, platform="metal" if kind == "robot" else "hcloud").size
    clock = PhaseClock(machine)
    with provider_server(log, lab_config(lab), secrets=SECRET_KEYS) as server:
        resource = ResourceDriver(server, RescueInstallProvider(), f"{kind}-1-install", TYPE)
        begun = time.monotonic()
        resource.preview(inputs)
        started = time.monotonic()
        clock.start()
        step = resource.up(inputs, timeout=WAIT)
        ended = time.monotonic()
        peak = peak_memory_kib(server)
    clock.join(timeout=5)
    if step.outputs.get("outcome") != "installed" or len(clock.at) != len(clock.STEPS):
        raise RuntimeError(f"{kind}: the install did not complete ({step.op}, phases seen: {', '.join(clock.at)})")
    timings = step.outputs["timings"]
    logged_in = ended - timings["total"] + timings["rescue"]  # the provider's clock starts when Create does
    split = overhead(lab, kind, size, {**clock.at, "started": started}, logged_in, ended)
    return Run(ended - started, lab.delays.unavoidable_install(kind, size), split, started - begun, peak)


def report(size: str, kind: str, runs: list[Run]) -> None:
    for number, run in enumerate(runs, 1):
        split = " ".join(f"{name} {seconds * 1000:4.0f}" for name, seconds in run.overhead.items())
        print(
            f"{size:>7} {kind:5} #{number}: wall {run.wall:6.2f} s  unavoidable {run.unavoidable:6.2f} s"
            f"  ratio {run.ratio:.3f}  peak {run.peak_kib / 1024:5.1f} MiB  over (ms): {split}"
            f"  [provider start {run.provider_start * 1000:.0f} ms]"
        )
    ratios = [run.ratio for run in runs]
    verdict = "ok" if statistics.median(ratios) <= GOAL else "ABOVE GOAL"
    print(
        f"{size:>7} {kind:5}: ratio median {statistics.median(ratios):.3f} max {max(ratios):.3f}"
        f" (goal <= {GOAL}: {verdict}); provider peak max {max(r.peak_kib for r in runs) / 1024:.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="installs per server kind and image size")
    parser.add_argument("--scale", type=float, default=0.25, help="factor on Delays.realistic() durations")
    parser.add_argument("--bandwidth", type=float, default=10e6, help="image download, bytes per second")
    parser.add_argument("--kinds", nargs="+", default=["robot", "cloud"], choices=["robot", "cloud"])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    options = parser.parse_args()
    logging.getLogger("paramiko.transport").setLevel(logging.CRITICAL)  # the lab's SSH servers: reboots cut links
    delays = Delays.realistic().scaled(options.scale, bandwidth=options.bandwidth)
    print(f"delays x{options.scale} of realistic, bandwidth {options.bandwidth / 1e6:g} MB/s, {options.runs} run(s)")
    peaks: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rescue-") as work:
        for size in options.sizes:
            spec = LabSpec(delays=delays, image_profile=ImageProfile(raw_size=SIZES[size]))
            with Lab(spec) as lab:
                for platform in ("metal", "hcloud"):
                    lab.artifact(VERSION, platform=platform)  # built (or read from the cache) before any timing
                for kind in options.kinds:
                    runs = [install(lab, kind, Path(work) / f"{kind}.log") for _ in range(options.runs)]
                    report(size, kind, runs)
                    peaks[size] = max(peaks.get(size, 0), *(run.peak_kib for run in runs))
    print(
        "provider peak memory: "
        + ", ".join(f"{peak / 1024:.1f} MiB with the {size} image" for size, peak in peaks.items())
    )


if __name__ == "__main__":
    main()
