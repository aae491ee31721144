"""The rescue system's userland: real commands in namespaces where the machine's disks are the only disks.

Why namespaces rather than PATH shims: commands such as `curl | zstd -d | dd of=/dev/disk/by-id/…`,
`wipefs`, `sgdisk` and `blkid` run unmodified, on block devices, with absolute paths, pipes and
background jobs, exactly as on Hetzner's rescue system. Isolation is enforced by the kernel, not by
rewriting commands:

- A mount namespace (set up by root) binds the sandbox's own `/dev`, `/root`, `/run`, `/tmp`, an empty
  `/sys/block`, `/etc/hostname` and `/etc/motd` over the host's, and binds the shim script over the
  hardware commands (`lsblk`, `systemctl`, hence `reboot`/`shutdown`/`poweroff`/`halt`) and over
  `/usr/local/sbin` (`mdadm`, `dmidecode`, `udevadm`, `partprobe`, `installimage`).
- The commands then run as an unprivileged host uid, one per machine, mapped to root inside a user
  namespace with its own UTS (hostname `rescue`), PID, IPC and mount namespaces. They look like root, but
  the kernel checks every host object against the unprivileged uid: the host's disks (root:disk 0660) and
  other machines' devices cannot be opened, `mknod` and mounting block devices are refused, host files
  are read-only, and the bind mounts cannot be undone (they are locked in the child namespace).
- `/dev` holds only null/zero/full/random/urandom/tty and one block node per disk, each pointing at a
  loop device over that disk's file and owned by the sandbox uid, plus `/dev/disk/by-id` symlinks.

A long-lived init (PID 1 of the namespace, reaping orphans) holds the namespaces; each command enters
them with `nsenter`. Killing the init on reboot kills every process of the rescue system; the init also
exits when the lab process dies (it watches a pipe only the lab holds open), so nothing outlives the lab.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

from lab.disks import Disk
from lab.rescue.loop import LoopDevice

_CHECKOUT = Path(__file__).resolve().parents[2]
_SYSTEM_PYTHON = "/usr/bin/python3"
_SHIM_MODULES = ("lab/__init__.py", "lab/gpt.py", "lab/rescue/__init__.py", "lab/rescue/shim.py")
"""What the shims import: standard library only, besides these."""
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CHAR_DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}
_SHIMMED_BINARIES = ("lsblk", "systemctl")
_EXTRA_SHIMS = ("mdadm", "dmidecode", "udevadm", "partprobe", "installimage")
_HIDDEN_SYS = ("/sys/block", "/sys/class/block", "/sys/dev/block")
_INIT = """
import os, signal, socket, sys, threading
socket.sethostname(sys.argv[1])
os.chdir("/root")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
def watch_lab(fd=int(sys.argv[2])):
    while os.read(fd, 1):
        pass
    os._exit(0)
threading.Thread(target=watch_lab, daemon=True).start()
print("ready", flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        signal.pause()
"""


class SandboxError(RuntimeError):
    """The rescue sandbox cannot be set up on this host."""


class Sandbox:
    """One rescue boot's namespaces, devices and files under `root`."""

    def __init__(self, root: Path, uid: int, disks: list[Disk], hardware: dict[str, Any], hostname: str, motd: str):
        self.root, self.uid, self.disks = root, uid, disks
        self.hardware, self.hostname, self.motd = hardware, hostname, motd
        self._loops: list[LoopDevice] = []
        self._outer: subprocess.Popen[bytes] | None = None
        self._lifeline = -1
        self.init_pid = 0

    @property
    def run_dir(self) -> Path:
        """The sandbox's `/run` on the host."""
        return self.root / "run"

    def start(self, timeout: float = 10.0) -> None:
        """Lay out the file tree, attach the disks, start the init."""
        if os.geteuid() != 0:
            raise SandboxError("the rescue sandbox needs root (loop devices, mount namespaces); run the lab as root")
        self._layout()
        watch, self._lifeline = os.pipe()
        self._outer = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", self._mount_script(watch)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=(watch,),
        )
        os.close(watch)
        assert self._outer.stdout is not None
        line = self._outer.stdout.readline()
        if line.strip() != b"ready":
            error = self._outer.stderr.read().decode(errors="replace") if self._outer.stderr else ""
            self.stop()
            raise SandboxError(f"rescue sandbox init did not start: {error.strip() or line!r}")
        children = Path(f"/proc/{self._outer.pid}/task/{self._outer.pid}/children").read_text().split()
        self.init_pid = int(children[0])

    def run(self, command: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start `command` with bash as root of the rescue system; stdin/stdout/stderr are pipes."""
        environment = {"PATH": _PATH, "HOME": "/root", "USER": "root", "LOGNAME": "root", "SHELL": "/bin/bash"}
        environment.update({"LANG": "C.UTF-8", "TERM": "dumb", **(env or {})})
        argv = ["nsenter", "-t", str(self.init_pid), "--user", "--mount", "--uts", "--pid", "--ipc", "-w", "--"]
        argv += ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in environment.items()), "/bin/bash", "-c", command]
        return subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )

    def stop(self) -> None:
        """Kill every process of the rescue system, flush and release the disks, remove the tree."""
        if self.init_pid:
            _kill(self.init_pid)
            self.init_pid = 0
        if self._outer is not None:
            _kill(self._outer.pid)
            self._outer.wait(timeout=10)
            for stream in (self._outer.stdout, self._outer.stderr):
                if stream:
                    stream.close()
            self._outer = None
        if self._lifeline >= 0:
            os.close(self._lifeline)
            self._lifeline = -1
        for loop in self._loops:
            loop.close()
        self._loops.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def _layout(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        for sub in ("dev/disk/by-id", "tmp", "roothome/.oldroot/nfs/install", "run/lab", "etc", "shims", "empty"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").chmod(0o1777)
        (self.root / "etc/hostname").write_text(f"{self.hostname}\n")
        (self.root / "etc/motd").write_text(self.motd)
        self._write_shims()
        self._make_devices()
        hardware = {**self.hardware, "disks": self._disk_inventory()}
        (self.run_dir / "lab/hardware.json").write_text(json.dumps(hardware, indent=2))
        for path in [self.root, *self.root.rglob("*")]:
            os.lchown(path, self.uid, self.uid)

    def _write_shims(self) -> None:
        # The shims' Python code is copied into the sandbox (/run/lab/python): the checkout may live under
        # /tmp, which the sandbox hides behind its own.
        library = self.run_dir / "lab/python"
        for module in _SHIM_MODULES:
            target = library / module
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_CHECKOUT / module, target)
        script = (
            "#!/bin/sh\n"
            f"PYTHONPATH=/run/lab/python exec {_SYSTEM_PYTHON} -P -m lab.rescue.shim "
            '"$(basename "$0")" "$@"\n'
        )
        targets = [self.root / "shims" / name for name in (*_SHIMMED_BINARIES, *_EXTRA_SHIMS)]
        targets.append(self.root / "roothome/.oldroot/nfs/install/installimage")
        for target in targets:
            target.write_text(script)
            target.chmod(0o755)

    def _make_devices(self) -> None:
        dev = self.root / "dev"
        for name, (major, minor) in _CHAR_DEVICES.items():
            os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(dev / name, 0o666)
        for name, target in {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1"}.items():
            (dev / name).symlink_to(target)
        (dev / "stderr").symlink_to("/proc/self/fd/2")
        for disk in self.disks:
            loop = LoopDevice(disk.path)
            self._loops.append(loop)
            os.mknod(dev / disk.spec.name, 0o660 | stat.S_IFBLK, os.makedev(loop.major, loop.minor))
            os.chmod(dev / disk.spec.name, 0o660)
            for alias in disk.spec.by_id:
                (dev / "disk/by-id" / alias).symlink_to(f"../../{disk.spec.name}")

    def _disk_inventory(self) -> list[dict[str, Any]]:
        inventory = []
        for index, disk in enumerate(self.disks):
            spec = disk.spec
            major = 259 if spec.transport == "nvme" else 8
            minor = index * (1 if spec.transport == "nvme" else 16)
            inventory.append(
                {
                    "name": spec.name,
                    "size": spec.size,
                    "model": spec.model,
                    "serial": spec.serial,
                    "wwn": spec.wwn,
                    "tran": spec.transport if spec.transport != "virtio" else None,
                    "rota": spec.rotational,
                    "major": major,
                    "minor": minor,
                    "partition_prefix": spec.partition_prefix,
                    "by_id": list(spec.by_id),
                }
            )
        return inventory

    def _mount_script(self, watch: int) -> str:
        root = self.root
        binds = [
            (root / "dev", "/dev"),
            (root / "roothome", "/root"),
            (root / "run", "/run"),
            (root / "etc/hostname", "/etc/hostname"),
            (root / "etc/motd", "/etc/motd"),
            (root / "shims", "/usr/local/sbin"),
        ]
        binds += [(root / "empty", path) for path in _HIDDEN_SYS if os.path.isdir(path)]
        for name in _SHIMMED_BINARIES:
            found = shutil.which(name, path=_PATH)
            if found:
                binds.append((root / "shims" / name, os.path.realpath(found)))
        binds.append((root / "tmp", "/tmp"))  # last: the sandbox itself may live under /tmp
        lines = ["set -e"] + [f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}" for src, dst in binds]
        inner = ["unshare", "--user", "--map-root-user", "--uts", "--mount", "--pid", "--ipc", "--fork"]
        inner += ["--mount-proc", "--", _SYSTEM_PYTHON, "-c", _INIT, self.hostname, str(watch)]
        setpriv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", "--", *inner]
        lines.append("exec " + shlex.join(setpriv))
        return "\n".join(lines)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
