"""Rescue boots on both kinds of Hetzner servers behind one small interface.

A `RescueMachine` arms the rescue system for the next boot and resets the server; the install flow does not
care whether Robot or the Cloud API does it. Each reset attempt re-arms rescue first, because an activation is
valid for one boot only, and a boot that missed rescue has used it up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from common.waiting import Backoff, Deadline, Sleep, WaitTimeout, wait_until
from hetzner.cloud import CloudClient
from hetzner.errors import HetznerError
from hetzner.robot import ResetOptions, ResetType, RobotClient

POWER_OFF_TIMEOUT = 120.0
"""Seconds a forced power-off (`power_long`) may take to show as `shut off`."""
KEY_NAME = "talos-hetzner-rescue"
"""Our rescue SSH key is stored as `talos-hetzner-rescue-<fingerprint start>` in Robot or the Cloud project
when it is not there yet (the Cloud API refuses a second key under a name in use)."""


class MachineError(HetznerError):
    """The server cannot be put into the rescue system automatically."""


def key_name(fingerprint: str) -> str:
    return f"{KEY_NAME}-{fingerprint.replace(':', '')[:12]}"


@dataclass(frozen=True)
class RescueAccess:
    """How to recognize an armed rescue system: login is by our SSH key only.

    The root password the APIs return is never sent: before the host key is known, the SSH server may still be
    the old system (or something else at that address), and a password would go to it. It is kept only to be
    handed to the user as a secret (a login on the console while the rescue system runs).
    """

    host_keys: tuple[str, ...] = ()
    """Host key fingerprints the API reported for this rescue boot: the SSH host key must be one of them."""
    password: str | None = field(default=None, repr=False)
    """The activation's root password (secret); None when the API returned none."""


class RescueMachine(Protocol):
    label: str
    """How progress lines and errors name the server: `robot server 321`, `cloud server 42`."""

    def arm_rescue(self, public_key: str, fingerprint: str) -> RescueAccess:
        """Arm the rescue system with this SSH key for the next boot."""
        ...

    def reset(self, attempt: int) -> str:
        """Reset (or power on) the server for reset attempt `attempt` (0-based); return what was done."""
        ...


class RobotMachine:
    """A dedicated server, armed and reset through the Robot webservice."""

    def __init__(
        self,
        client: RobotClient,
        number: int,
        *,
        sleep: Sleep = time.sleep,
        power_off_timeout: float = POWER_OFF_TIMEOUT,
    ) -> None:
        self._client, self.number, self._sleep = client, number, sleep
        self.power_off_timeout = power_off_timeout
        self.label = f"robot server {number}"

    def arm_rescue(self, public_key: str, fingerprint: str) -> RescueAccess:
        self._client.keys.ensure(key_name(fingerprint), public_key, fingerprint)
        rescue = self._client.boot.enable_rescue(self.number, [fingerprint])
        return RescueAccess(tuple(key.fingerprint for key in rescue.host_keys), rescue.password)

    def reset(self, attempt: int) -> str:
        kind = choose_reset(self._client.reset.options(self.number), attempt)
        if kind != "cycle":
            self._client.reset.execute(self.number, kind)
            return f"{kind} reset"
        self._client.reset.execute(self.number, "power_long")
        try:
            wait_until(
                lambda: True if self._client.reset.options(self.number).is_off else None,
                Deadline.after(self.power_off_timeout),
                what=f"{self.label} to power off",
                backoff=Backoff(first=0.5, factor=2.0, cap=5.0),
                sleep=self._sleep,
            )
        except WaitTimeout as timeout:
            raise MachineError(
                f"{self.label} was sent a forced power-off (power_long), but {timeout} "
                "(fix: check the server in Robot and power it off or reset it by hand, then re-run)"
            ) from None
        self._client.reset.execute(self.number, "power")
        return "power cycle"


def choose_reset(options: ResetOptions, attempt: int) -> ResetType | Literal["cycle"]:
    """The reset for attempt `attempt`: escalating from a hardware reset to a full power cycle.

    A server that is off gets `power` (other types leave it off). A running one gets `hw` first, then a power
    cycle (`power_long`, wait until off, `power`), alternating; `sw` only where `hw` is not offered. `power`
    alone on a running server is an ACPI shutdown, and `man` waits for a technician: neither is used.
    """
    if options.is_off and "power" in options.types:
        return "power"
    ladder: list[ResetType | Literal["cycle"]] = ["hw"] if "hw" in options.types else ["sw"]
    if ladder[0] not in options.types:
        raise MachineError(
            f"robot server {options.server_number} offers no automatic reset (types {', '.join(options.types)}; "
            "fix: reset it by hand in Robot, then re-run)"
        )
    if {"power", "power_long"} <= set(options.types):
        ladder.append("cycle")
    return ladder[attempt % len(ladder)]


class CloudMachine:
    """A Cloud server, armed and reset through the Cloud API."""

    def __init__(self, client: CloudClient, server_id: int) -> None:
        self._client, self.server_id = client, server_id
        self.label = f"cloud server {server_id}"

    def arm_rescue(self, public_key: str, fingerprint: str) -> RescueAccess:
        key_id = self._client.ensure_ssh_key(key_name(fingerprint), public_key, fingerprint)
        enabled = self._client.enable_rescue(self.server_id, [key_id])
        return RescueAccess(password=enabled.root_password)  # the Cloud API reports no rescue host keys

    def reset(self, attempt: int) -> str:
        if self._client.server(self.server_id).status == "off":
            self._client.power_on(self.server_id)
            return "power on"
        self._client.reset(self.server_id)
        return "reset"
