"""The states a lab Talos node moves through."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """MachineStatus stages (plus `off`: no power, or nothing to boot)."""

    OFF = "off"
    BOOTING = "booting"
    INSTALLING = "installing"
    MAINTENANCE = "maintenance"
    RUNNING = "running"
    REBOOTING = "rebooting"
    SHUTTING_DOWN = "shutting down"
    RESETTING = "resetting"
    UPGRADING = "upgrading"


class EtcdState(StrEnum):
    NONE = "none"
    """Not a control plane, or not started yet."""
    PREPARING = "preparing"
    """Waiting to be bootstrapped or to join a bootstrapped cluster (service state Preparing)."""
    STARTING = "starting"
    """Running, health not known yet."""
    HEALTHY = "healthy"
