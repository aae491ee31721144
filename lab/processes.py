"""What a command's processes are doing, read from /proc: the lab's fault switches fire at meaningful moments."""

from __future__ import annotations

import os
import stat
from pathlib import Path

_PROC = Path("/proc")
_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants alive now."""
    children = _children_by_parent()
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def _writes_block_device(pid: int) -> bool:
    fds = _PROC / str(pid) / "fd"
    try:
        names = os.listdir(fds)
    except OSError:
        return False
    for name in names:
        try:
            is_block = stat.S_ISBLK(os.stat(fds / name).st_mode)
            flags = (_PROC / str(pid) / "fdinfo" / name).read_text().split("flags:", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if is_block and int(flags, 8) & os.O_ACCMODE in _WRITE_MODES:
            return True
    return False


def writes_block_device(root: int) -> bool:
    """Whether `root` or one of its descendants holds a block device open for writing."""
    return any(_writes_block_device(pid) for pid in process_tree(root))
