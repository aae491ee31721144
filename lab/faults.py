"""Named fault switches, armed per test and cleared by `Lab.reset()`.

A switch fires a number of times (or until cleared), optionally only for one target: a machine key
(`robot-321`, `cloud-7`) for machine faults, a path prefix (`/reset`) for API faults.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    """Every fault the lab can inject."""

    ROBOT_RATE_LIMIT = "robot.rate_limit"
    """Robot answers 403 RATE_LIMIT_EXCEEDED (params: max_request, interval)."""
    ROBOT_SERVER_ERROR = "robot.server_error"
    """Robot answers 500 INTERNAL_ERROR, or 503 maintenance (param: status)."""
    ROBOT_LOST = "robot.lost"
    """Robot closes the connection without an answer."""
    CLOUD_RATE_LIMIT = "cloud.rate_limit"
    """Cloud answers 429 rate_limit_exceeded with RateLimit-Remaining 0."""
    CLOUD_SERVER_ERROR = "cloud.server_error"
    """Cloud answers 500 server_error, 503 unavailable or a non-JSON 502/504 (param: status)."""
    CLOUD_LOCKED = "cloud.locked"
    """Cloud answers 423 locked to an action POST."""
    CLOUD_LOST = "cloud.lost"
    """Cloud closes the connection without an answer."""
    IMAGES_SERVER_ERROR = "images.server_error"
    """The image factory answers 500."""
    IMAGES_TRUNCATE = "images.truncate"
    """The CDN stops after `fraction` (default 0.5) of the artifact and closes the connection."""
    SSH_DROP_MID_WRITE = "ssh.drop_mid_write"
    """The rescue SSH connection drops while a command writes a disk (at least `after` seconds into it, default 0.2)."""
    RESCUE_NOT_COMING_UP = "rescue.not_coming_up"
    """A boot skips the armed rescue system and boots the disks; the activation stays armed."""
    BOOT_SLOW = "boot.slow"
    """Each boot takes `extra` seconds longer (default 1.0)."""
    BOOT_WRONG_DISK_FIRST = "boot.wrong_disk_first"
    """The firmware tries the disks in reverse order."""


@dataclass
class FaultArm:
    """One armed switch."""

    fault: Fault
    times: int | None
    target: str | None
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, target: str | None) -> bool:
        if self.target is None:
            return True
        return target is not None and target.startswith(self.target)


class Faults:
    """The lab's fault switches (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arms: list[FaultArm] = []
        self._fired: dict[Fault, int] = {}

    def arm(self, fault: Fault | str, *, times: int | None = 1, target: str | None = None, **params: Any) -> None:
        """Arm `fault` for `times` occurrences (None: until cleared), optionally for one target only."""
        try:
            name = Fault(fault)
        except ValueError:
            known = ", ".join(f.value for f in Fault)
            raise ValueError(f"unknown fault {fault!r} (fix: one of {known})") from None
        if times is not None and times < 1:
            raise ValueError(f"fault {name.value}: times must be >= 1 or None, not {times}")
        with self._lock:
            self._arms.append(FaultArm(name, times, target, params))

    def take(self, fault: Fault, target: str | None = None) -> FaultArm | None:
        """Consume one occurrence of `fault` for `target`, if armed."""
        with self._lock:
            for arm in self._arms:
                if arm.fault is fault and arm.matches(target):
                    if arm.times is not None:
                        arm.times -= 1
                        if arm.times == 0:
                            self._arms.remove(arm)
                    self._fired[fault] = self._fired.get(fault, 0) + 1
                    return arm
        return None

    def peek(self, fault: Fault, target: str | None = None) -> FaultArm | None:
        """The armed switch `take` would consume, without consuming it."""
        with self._lock:
            return next((a for a in self._arms if a.fault is fault and a.matches(target)), None)

    def fired(self, fault: Fault) -> int:
        """How often `fault` fired since the last reset."""
        with self._lock:
            return self._fired.get(fault, 0)

    def clear(self) -> None:
        """Disarm everything and forget the counts."""
        with self._lock:
            self._arms.clear()
            self._fired.clear()
