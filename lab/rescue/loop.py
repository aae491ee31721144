"""Loop devices over disk files, so the rescue sandbox writes to real block devices.

A block device keeps its size (a `dd` to it never truncates the file, a write past its end fails with
ENOSPC) and `blkid`, `wipefs`, `sgdisk`, `blockdev` work on it as on hardware. Devices are attached with
LOOP_CONFIGURE and the autoclear flag while the lab holds the descriptor: if the lab dies, the kernel
detaches them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from pathlib import Path

_LOOP_CTL_GET_FREE = 0x4C82
_LOOP_CONFIGURE = 0x4C0A
_LO_FLAGS_AUTOCLEAR = 4
_LO_FLAGS_DIRECT_IO = 16  # writes reach the backing file as on hardware, not the host's page cache
_INFO64 = struct.Struct("<QQQQQIIII64s64s32sQQ")
_ATTEMPTS = 20


class LoopDevice:
    """One attached loop device; `close()` flushes it and lets the kernel detach it."""

    def __init__(self, backing: Path) -> None:
        self.backing = backing
        self.fd, self.path = _attach(backing)
        rdev = os.fstat(self.fd).st_rdev
        self.major, self.minor = os.major(rdev), os.minor(rdev)

    def __repr__(self) -> str:
        return f"LoopDevice({self.path} -> {self.backing})"

    def close(self) -> None:
        """Write dirty blocks through to the backing file, then release the device."""
        if self.fd < 0:
            return
        try:
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1


def _attach(backing: Path) -> tuple[int, str]:
    control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    file_fd = os.open(backing, os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(_ATTEMPTS):
            index = fcntl.ioctl(control, _LOOP_CTL_GET_FREE)
            path = f"/dev/loop{index}"
            device = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            name = str(backing).encode()[-63:]
            info = _INFO64.pack(0, 0, 0, 0, 0, 0, 0, 0, _LO_FLAGS_AUTOCLEAR | _LO_FLAGS_DIRECT_IO, name, b"", b"", 0, 0)
            config = struct.pack("<II", file_fd, 0) + info + bytes(64)
            try:
                fcntl.ioctl(device, _LOOP_CONFIGURE, config)
            except OSError as err:
                os.close(device)
                if err.errno == errno.EBUSY:
                    continue
                raise
            return device, path
        raise RuntimeError(f"no free loop device for {backing} after {_ATTEMPTS} attempts")
    finally:
        os.close(file_fd)
        os.close(control)
