"""Hetzner Robot webservice: the client, its objects and its errors."""

from hetzner.robot.client import ROBOT_URL, RobotClient
from hetzner.robot.domain import HostKey, IpAddress, Key, Rescue, ResetOptions, ResetType, Server
from hetzner.robot.errors import (
    RobotAuthError,
    RobotConflictError,
    RobotConnectionError,
    RobotError,
    RobotInputError,
    RobotNotFoundError,
    RobotRateLimitError,
    RobotServerError,
)

__all__ = [
    "ROBOT_URL",
    "HostKey",
    "IpAddress",
    "Key",
    "Rescue",
    "ResetOptions",
    "ResetType",
    "RobotAuthError",
    "RobotClient",
    "RobotConflictError",
    "RobotConnectionError",
    "RobotError",
    "RobotInputError",
    "RobotNotFoundError",
    "RobotRateLimitError",
    "RobotServerError",
    "Server",
]
