"""A booted rescue system: the sandbox, its SSH server and the control socket its power commands use."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from lab.disks import Disk
from lab.rescue.sandbox import Sandbox
from lab.rescue.ssh import DropFault, Login, SshServer

MOTD = """
-------------------------------------------------------------------

  Welcome to the Hetzner Rescue System.

  This Rescue System is based on Debian GNU/Linux 12 (bookworm) with a custom kernel.
  You can install software like you would in a normal system.

  To install a new operating system from one of our prebuilt
  images, run 'installimage' and follow the instructions.

  Important note: Any data that was not written to the disks will be lost during a reboot.

  For additional information, check the following resources:
    Rescue System:           https://docs.hetzner.com/robot/dedicated-server/troubleshooting/hetzner-rescue-system
    Installimage:            https://docs.hetzner.com/robot/dedicated-server/operating-systems/installimage
    Install custom software: https://docs.hetzner.com/robot/dedicated-server/operating-systems/installing-custom-images
    other articles:          https://docs.hetzner.com/robot

-------------------------------------------------------------------
  (lab rescue system)
"""


@dataclass(frozen=True)
class RescueSetup:
    """Everything one rescue boot needs from its machine."""

    address: str
    ssh_port: int
    root: Path
    uid: int
    disks: list[Disk]
    hardware: dict[str, Any]
    host_key: paramiko.PKey = field(repr=False)
    login: Login
    power: Callable[[str], None]
    """Called with `reboot`, `poweroff` or `halt` when a power command runs inside."""
    drop: DropFault


class RescueSystem:
    """Sandbox + SSH on the machine's address + control socket, started together, stopped together."""

    def __init__(self, setup: RescueSetup) -> None:
        self.setup = setup
        self.sandbox = Sandbox(setup.root, setup.uid, setup.disks, setup.hardware, "rescue", MOTD)
        self._ssh: SshServer | None = None
        self._control: socket.socket | None = None

    def start(self) -> None:
        self.sandbox.start()
        try:
            self._listen_control()
            self._ssh = SshServer(
                self.setup.address,
                self.setup.ssh_port,
                [self.setup.host_key],
                login=self.setup.login,
                runner=self.sandbox.run,
                drop=self.setup.drop,
            )
            self._ssh.start()
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self._ssh is not None:
            self._ssh.stop()
            self._ssh = None
        if self._control is not None:
            self._control.close()
            self._control = None
        self.sandbox.stop()

    def _listen_control(self) -> None:
        path = self.sandbox.run_dir / "lab/control.sock"
        control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        control.bind(str(path))
        path.chmod(0o666)
        control.listen(4)
        self._control = control
        threading.Thread(target=self._control_loop, args=(control,), daemon=True).start()

    def _control_loop(self, control: socket.socket) -> None:
        while True:
            try:
                conn, _ = control.accept()
            except OSError:
                return
            with conn:
                action = conn.recv(64).decode(errors="replace").strip()
                if action not in ("reboot", "poweroff", "halt"):
                    conn.sendall(b"unknown\n")
                    continue
                conn.sendall(b"ok\n")
            threading.Thread(target=self.setup.power, args=(action,), daemon=True).start()
            return
