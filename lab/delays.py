"""Simulated physical durations: power-on self test, rescue netboot, disk boot, shutdown, transfers.

`Delays.realistic()` holds estimates of what a real server takes; `scaled(factor)` shrinks every duration
by one explicit factor so tests run in seconds. Benchmarks divide a measured wall time by
`unavoidable_install()`, the time no client can save: a reset into rescue, the image transfer at the
lab's bandwidth, and the reboot into the installed system.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class MachineTimings:
    """Seconds one kind of machine takes for each physical step."""

    post: float
    """Power-on self test: from power on or reset until the firmware picks a boot device."""
    rescue_boot: float
    """Network boot of the rescue system until its SSH answers."""
    os_boot: float
    """Boot from disk until the installed system (Talos) listens."""
    shutdown: float
    """A running system's orderly shutdown (ACPI power button, reboot command) until power off."""

    def scaled(self, factor: float) -> MachineTimings:
        return MachineTimings(*(value * factor for value in asdict(self).values()))


@dataclass(frozen=True)
class Delays:
    """All simulated durations of one lab, in real seconds (already scaled)."""

    robot: MachineTimings
    cloud: MachineTimings
    manual_reset: float
    """A technician's power cycle after a Robot `man` reset."""
    action: float
    """Duration of a Cloud API action (enable_rescue, reset, create_server, ...)."""
    bandwidth: float
    """Image download speed per connection, bytes per second (not scaled: set it explicitly)."""
    scale: float = 1.0
    """The factor applied to `realistic()` durations; 1.0 means real time."""

    @classmethod
    def realistic(cls) -> Delays:
        """Estimates for real hardware; dedicated servers spend most of a reset in their firmware."""
        return cls(
            robot=MachineTimings(post=60.0, rescue_boot=40.0, os_boot=30.0, shutdown=10.0),
            cloud=MachineTimings(post=2.0, rescue_boot=15.0, os_boot=15.0, shutdown=5.0),
            manual_reset=1800.0,
            action=2.0,
            bandwidth=125e6,
        )

    @classmethod
    def for_tests(cls) -> Delays:
        """Real durations scaled down 200 times, unlimited-looking bandwidth: a reset into rescue takes 0.5 s."""
        return cls.realistic().scaled(0.005, bandwidth=1e9)

    def scaled(self, factor: float, *, bandwidth: float | None = None) -> Delays:
        """Every duration multiplied by `factor`; bandwidth replaced when given."""
        if factor <= 0:
            raise ValueError(f"delay scale must be > 0, not {factor}")
        return replace(
            self,
            robot=self.robot.scaled(factor),
            cloud=self.cloud.scaled(factor),
            manual_reset=self.manual_reset * factor,
            action=self.action * factor,
            bandwidth=self.bandwidth if bandwidth is None else bandwidth,
            scale=self.scale * factor,
        )

    def timings(self, kind: str) -> MachineTimings:
        """Timings of a `robot` or `cloud` machine."""
        return self.robot if kind == "robot" else self.cloud

    def transfer(self, size: int) -> float:
        """Seconds to download `size` bytes at the lab's bandwidth."""
        return size / self.bandwidth

    def unavoidable_install(self, kind: str, artifact_size: int) -> float:
        """Reset into rescue + image download + reboot into the installed system, in seconds.

        Counted: for Cloud the enable_rescue action (the API refuses the reset until it finishes), POST and
        rescue netboot after the reset, the download of the compressed artifact, the rescue system's shutdown
        on `reboot`, POST again and the disk boot. Not counted: API calls, SSH handshakes, decompression and
        disk writes, which a client can overlap or speed up.
        """
        t = self.timings(kind)
        rescue_action = self.action if kind == "cloud" else 0.0
        return rescue_action + t.post + t.rescue_boot + self.transfer(artifact_size) + t.shutdown + t.post + t.os_boot

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
