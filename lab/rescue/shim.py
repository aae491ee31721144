"""Hardware commands inside the rescue sandbox: `lsblk`, power commands, `dmidecode`, `mdadm`, ...

Run by the system interpreter inside the sandbox (standard library only), as
`python3 -m lab.rescue.shim <program> <args>`. The machine's hardware comes from
`/run/lab/hardware.json`; power requests go to the lab through `/run/lab/control.sock`. Everything
else a rescue system offers (`dd`, `curl`, `zstd`, `wipefs`, `sgdisk`, `blkid`, `hostname`...) is the
real program.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from lab import gpt

HARDWARE = "/run/lab/hardware.json"
CONTROL = "/run/lab/control.sock"
NOT_SYSTEMD = "System has not been booted with systemd as init system (PID 1). Can't operate.\n"

Row = dict[str, Any]


def main(argv: list[str]) -> int:
    program, args = os.path.basename(argv[0]), argv[1:]
    handler = PROGRAMS.get(program)
    if handler is None:
        sys.stderr.write(f"{program}: not available in the lab rescue system\n")
        return 127
    return handler(args)


def _hardware() -> dict[str, Any]:
    with open(HARDWARE) as f:
        return json.load(f)


# --- power ---------------------------------------------------------------------------------------


def _request_power(action: str) -> int:
    """Ask the lab to reboot/power off/halt this machine, then wait to be killed like a real shutdown."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(CONTROL)
            conn.sendall(f"{action}\n".encode())
            conn.recv(64)
    except OSError as err:
        sys.stderr.write(f"Failed to {action} system: {err}\n")
        return 1
    time.sleep(60)
    return 0


def _delayed(action: str, minutes: int) -> int:
    """`shutdown +N`: schedule the request and return, as systemd does."""
    when = time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() + minutes * 60))
    verb = {"reboot": "Reboot", "poweroff": "Shutdown", "halt": "Shutdown"}[action]
    sys.stdout.write(f"{verb} scheduled for {when}, use 'shutdown -c' to cancel.\n")
    if os.fork() == 0:
        os.setsid()
        time.sleep(minutes * 60)
        os._exit(_request_power(action))
    return 0


_POWER_SWITCHES: dict[str, tuple[str, dict[str, str]]] = {
    "reboot": ("reboot", {"-p": "poweroff", "--poweroff": "poweroff", "--halt": "halt"}),
    "poweroff": ("poweroff", {"--reboot": "reboot", "--halt": "halt"}),
    "halt": ("halt", {"-p": "poweroff", "--poweroff": "poweroff", "--reboot": "reboot"}),
}


def power_command(program: str) -> Callable[[list[str]], int]:
    """`reboot`, `poweroff`, `halt`: their own action unless a switch names another; `-w` only logs."""
    default, switches = _POWER_SWITCHES[program]

    def command(args: list[str]) -> int:
        if "-w" in args or "--wtmp-only" in args:
            return 0
        return _request_power(next((switches[a] for a in args if a in switches), default))

    return command


def shutdown(args: list[str]) -> int:
    flags = [a for a in args if a.startswith("-")]
    rest = [a for a in args if not a.startswith("-")]
    if "-c" in flags or "-k" in flags:
        return 0
    if "-r" in flags or "--reboot" in flags:
        action = "reboot"
    elif "-H" in flags or "--halt" in flags:
        action = "halt"
    else:
        action = "poweroff"
    when = rest[0] if rest else "+1"
    if when in ("now", "+0", "0"):
        return _request_power(action)
    if when.startswith("+") and when[1:].isdigit():
        return _delayed(action, int(when[1:]))
    sys.stderr.write(f"Failed to parse time specification: {when}\n")
    return 1


def systemctl(args: list[str]) -> int:
    verbs = [a for a in args if not a.startswith("-")]
    verb = verbs[0] if verbs else ""
    actions = {"reboot": "reboot", "kexec": "reboot", "poweroff": "poweroff", "halt": "halt"}
    if verb in actions:
        return _request_power(actions[verb])
    sys.stderr.write(NOT_SYSTEMD + "Failed to connect to bus: Host is down\n")
    return 1


def telinit(args: list[str]) -> int:
    level = args[0] if args else ""
    if level == "0":
        return _request_power("poweroff")
    if level == "6":
        return _request_power("reboot")
    return 0


# --- lsblk ---------------------------------------------------------------------------------------

_DEFAULT_COLUMNS = ["NAME", "MAJ:MIN", "RM", "SIZE", "RO", "TYPE", "MOUNTPOINTS"]
_FS_COLUMNS = ["NAME", "FSTYPE", "FSVER", "LABEL", "UUID", "FSAVAIL", "FSUSE%", "MOUNTPOINTS"]
_BOOL = {"RM", "RO", "ROTA", "HOTPLUG", "RAND"}
_INT = {"LOG-SEC", "PHY-SEC", "MIN-IO", "OPT-IO", "ALIGNMENT", "RA"}
_SIZE = {"SIZE", "FSAVAIL", "FSSIZE", "FSUSED"}
_COLUMNS = [
    "NAME", "KNAME", "PATH", "MAJ:MIN", "FSAVAIL", "FSSIZE", "FSTYPE", "FSUSED", "FSUSE%", "FSVER", "MOUNTPOINT",
    "MOUNTPOINTS", "LABEL", "UUID", "PTUUID", "PTTYPE", "PARTTYPE", "PARTTYPENAME", "PARTLABEL", "PARTUUID",
    "PARTFLAGS", "RA", "RO", "RM", "HOTPLUG", "MODEL", "SERIAL", "SIZE", "STATE", "OWNER", "GROUP", "MODE",
    "ALIGNMENT", "MIN-IO", "OPT-IO", "PHY-SEC", "LOG-SEC", "ROTA", "SCHED", "RQ-SIZE", "TYPE", "DISC-ALN",
    "DISC-GRAN", "DISC-MAX", "DISC-ZERO", "WSAME", "WWN", "RAND", "PKNAME", "HCTL", "TRAN", "SUBSYSTEMS", "REV",
    "VENDOR", "ZONED", "DAX",
]  # fmt: skip
_PART_TYPE_NAMES = {
    str(gpt.EFI_SYSTEM): "EFI System",
    str(gpt.BIOS_BOOT): "BIOS boot",
    str(gpt.LINUX_DATA): "Linux filesystem",
    str(gpt.LINUX_SWAP): "Linux swap",
}


def lsblk(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lsblk", add_help=False)
    for short, long in [("-J", "--json"), ("-b", "--bytes"), ("-d", "--nodeps"), ("-n", "--noheadings"),
                        ("-p", "--paths"), ("-P", "--pairs"), ("-r", "--raw"), ("-l", "--list"), ("-a", "--all"),
                        ("-f", "--fs"), ("-O", "--output-all"), ("-i", "--ascii"), ("-T", "--tree"),
                        ("-V", "--version"), ("-h", "--help")]:  # fmt: skip
        parser.add_argument(short, long, action="store_true")
    for short, long in [("-o", "--output"), ("-e", "--exclude"), ("-I", "--include"), ("-x", "--sort")]:
        parser.add_argument(short, long, action="append", default=[])
    parser.add_argument("devices", nargs="*")
    try:
        opts = parser.parse_args(args)
    except SystemExit:
        return 1
    if opts.version:
        sys.stdout.write("lsblk from util-linux 2.38.1\n")
        return 0
    columns = _lsblk_columns(opts)
    unknown = [c for c in columns if c not in _COLUMNS]
    if unknown:
        sys.stderr.write(f"lsblk: unknown column: {unknown[0]}\n")
        return 1
    rows = [_disk_row(disk, opts) for disk in _hardware()["disks"]]
    rows, missing = _select(rows, opts.devices)
    for device in missing:
        sys.stderr.write(f"lsblk: {device}: not a block device\n")
    if opts.devices and not rows:
        return 32
    if opts.nodeps:
        for row in rows:
            row["children"] = []
    if opts.sort:
        rows.sort(key=lambda r: str(r.get(opts.sort[-1].upper()) or ""))
    writer: Callable[[list[Row], list[str], argparse.Namespace], str]
    writer = _json if opts.json else _pairs if opts.pairs else _raw if opts.raw else _table
    sys.stdout.write(writer(rows, columns, opts))
    return 64 if missing else 0


def _lsblk_columns(opts: argparse.Namespace) -> list[str]:
    if opts.output_all:
        return list(_COLUMNS)
    columns = list(_FS_COLUMNS if opts.fs else _DEFAULT_COLUMNS)
    for spec in opts.output:
        if spec.startswith("+"):
            columns += [c.upper() for c in spec[1:].split(",") if c]
        else:
            columns = [c.upper() for c in spec.split(",") if c]
    return columns


def _select(rows: list[Row], devices: list[str]) -> tuple[list[Row], list[str]]:
    if not devices:
        return rows, []
    by_path = {}
    for row in rows:
        by_path[row["PATH"]] = row
        for child in row["children"]:
            by_path[child["PATH"]] = child
    selected, missing = [], []
    for device in devices:
        row = by_path.get(os.path.realpath(device))
        if row is None:
            missing.append(device)
        elif row not in selected:
            selected.append(row)
    return selected, missing


def _blkid(path: str, offset: int | None = None, size: int | None = None) -> dict[str, str]:
    argv = ["blkid", "-p", "-o", "export"]
    if offset is not None:
        argv += ["-O", str(offset), "-S", str(size)]
    result = subprocess.run([*argv, path], capture_output=True, text=True, check=False)
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def _disk_row(disk: dict[str, Any], opts: argparse.Namespace) -> Row:
    path = f"/dev/{disk['name']}"
    probe = _blkid(path)
    nvme = disk["tran"] == "nvme"
    row: Row = {
        "KNAME": disk["name"],
        "PATH": path,
        "MAJ:MIN": f"{disk['major']}:{disk['minor']}",
        "TYPE": "disk",
        "SIZE": disk["size"],
        "MODEL": disk["model"],
        "SERIAL": disk["serial"],
        "WWN": disk["wwn"],
        "TRAN": disk["tran"],
        "ROTA": disk["rota"],
        "VENDOR": None if nvme else ("ATA     " if disk["tran"] == "sata" else "QEMU    "),
        "HCTL": None if nvme else "0:0:0:0",
        "STATE": "live" if nvme else "running",
        "PHY-SEC": 4096 if disk["rota"] else 512,
        "PTTYPE": probe.get("PTTYPE"),
        "PTUUID": probe.get("PTUUID"),
        "FSTYPE": probe.get("TYPE"),
        "FSVER": probe.get("VERSION"),
        "LABEL": probe.get("LABEL"),
        "UUID": probe.get("UUID"),
        "SUBSYSTEMS": "block:nvme:pci" if nvme else "block:scsi:pci",
    }
    row["children"] = _partition_rows(disk, row)
    return _finish(row, disk["name"], opts)


def _partition_rows(disk: dict[str, Any], parent: Row) -> list[Row]:
    try:
        with open(parent["PATH"], "rb") as f:
            table = gpt.read_gpt(f, disk["size"])
    except OSError:
        return []
    if table is None:
        return []
    rows = []
    for part in table.partitions:
        name = f"{disk['partition_prefix']}{part.number}"
        probe = _blkid(parent["PATH"], part.offset, part.size)
        row: Row = {
            "KNAME": name,
            "PATH": f"/dev/{name}",
            "MAJ:MIN": f"{disk['major']}:{disk['minor'] + part.number}",
            "TYPE": "part",
            "SIZE": part.size,
            "WWN": disk["wwn"],
            "ROTA": disk["rota"],
            "PKNAME": disk["name"],
            "PHY-SEC": parent["PHY-SEC"],
            "PTTYPE": "gpt",
            "PTUUID": str(table.disk_guid),
            "PARTLABEL": part.name or None,
            "PARTUUID": str(part.guid),
            "PARTTYPE": str(part.type_guid),
            "PARTTYPENAME": _PART_TYPE_NAMES.get(str(part.type_guid)),
            "PARTFLAGS": hex(part.attributes) if part.attributes else None,
            "FSTYPE": probe.get("TYPE"),
            "FSVER": probe.get("VERSION"),
            "LABEL": probe.get("LABEL"),
            "UUID": probe.get("UUID"),
            "SUBSYSTEMS": parent["SUBSYSTEMS"],
            "children": [],
        }
        rows.append(row)
    return rows


def _finish(row: Row, name: str, opts: argparse.Namespace) -> Row:
    defaults: Row = {"RM": False, "RO": False, "HOTPLUG": False, "RAND": False, "LOG-SEC": 512, "MIN-IO": 512}
    defaults |= {"OPT-IO": 0, "ALIGNMENT": 0, "RA": 128, "OWNER": "root", "GROUP": "disk", "MODE": "brw-rw----"}
    defaults |= {"MOUNTPOINTS": [None], "SCHED": "none", "ZONED": "none", "DAX": False}
    row = {**defaults, **row}
    row["NAME"] = row["PATH"] if opts.paths else name
    row["children"] = [_finish(child, child["KNAME"], opts) for child in row.get("children", [])]
    return row


def _value(row: Row, column: str, opts: argparse.Namespace) -> Any:
    value = row.get(column)
    if column == "MOUNTPOINT":
        return None
    if column in _SIZE and isinstance(value, int) and not opts.bytes:
        return _human(value)
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    return str(value)


def _human(size: int) -> str:
    units = "BKMGTPE"
    exponent = 0
    while exponent < len(units) - 1 and size >= 1024 ** (exponent + 1):
        exponent += 1
    if exponent == 0:
        return f"{size}B"
    value = round(size / 1024**exponent, 1)
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text}{units[exponent]}"


def _flatten(rows: list[Row], opts: argparse.Namespace) -> list[tuple[Row, str]]:
    """Rows in output order with their tree prefix (empty in list mode)."""
    out = []
    branch, last = ("|-", "`-") if opts.ascii else ("├─", "└─")
    for row in rows:
        out.append((row, ""))
        children = row["children"]
        for index, child in enumerate(children):
            prefix = "" if opts.list or opts.raw or opts.pairs else (last if index == len(children) - 1 else branch)
            out.append((child, prefix))
    return out


def _json(rows: list[Row], columns: list[str], opts: argparse.Namespace) -> str:
    def convert(row: Row) -> dict[str, Any]:
        item = {}
        for column in columns:
            value = _value(row, column, opts)
            if value is not None and column not in _BOOL and column != "MOUNTPOINTS":
                value = int(value) if column in _INT or (column in _SIZE and opts.bytes) else str(value)
            item[column.lower()] = value
        if not opts.list and row["children"]:
            item["children"] = [convert(child) for child in row["children"]]
        return item

    if opts.list:
        devices = [convert({**row, "children": []}) for row, _ in _flatten(rows, opts)]
    else:
        devices = [convert(row) for row in rows]
    return json.dumps({"blockdevices": devices}, indent=3) + "\n"


def _pairs(rows: list[Row], columns: list[str], opts: argparse.Namespace) -> str:
    lines = []
    for row, _ in _flatten(rows, opts):
        fields = []
        for column in columns:
            key = column.replace(":", "_").replace("-", "_").replace("%", "_PCT")
            text = _text(_value(row, column, opts)).replace("\n", "\\x0a").replace('"', "\\x22")
            fields.append(f'{key}="{text}"')
        lines.append(" ".join(fields))
    return "".join(f"{line}\n" for line in lines)


def _raw(rows: list[Row], columns: list[str], opts: argparse.Namespace) -> str:
    lines = [] if opts.noheadings else [" ".join(columns)]
    for row, _ in _flatten(rows, opts):
        values = [_text(_value(row, c, opts)).replace(" ", "\\x20").replace("\n", "\\x0a") for c in columns]
        lines.append(" ".join(values))
    return "".join(f"{line}\n" for line in lines)


def _table(rows: list[Row], columns: list[str], opts: argparse.Namespace) -> str:
    table = [] if opts.noheadings else [columns]
    for row, prefix in _flatten(rows, opts):
        cells = [_text(_value(row, c, opts)).replace("\n", ",") for c in columns]
        if columns and columns[0] == "NAME":
            cells[0] = prefix + cells[0]
        table.append(cells)
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    right = {"SIZE", "RM", "RO", "ROTA", "LOG-SEC", "PHY-SEC", "MAJ:MIN", "FSAVAIL", "FSUSE%"}
    lines = []
    for line in table:
        cells = [
            cell.rjust(w) if col in right else cell.ljust(w)
            for cell, w, col in zip(line, widths, columns, strict=False)
        ]
        lines.append(" ".join(cells).rstrip())
    return "".join(f"{line}\n" for line in lines)


# --- other hardware tools ------------------------------------------------------------------------

_DMI_KEYWORDS = {
    "system-uuid": "uuid",
    "system-manufacturer": "manufacturer",
    "system-product-name": "product",
    "system-serial-number": "serial",
    "baseboard-manufacturer": "manufacturer",
    "baseboard-product-name": "product",
    "baseboard-serial-number": "serial",
}


def dmidecode(args: list[str]) -> int:
    hardware = _hardware()
    if args[:1] in (["-s"], ["--string"]):
        keyword = args[1] if len(args) > 1 else ""
        if keyword not in _DMI_KEYWORDS:
            valid = "\n".join(f"  {k}" for k in _DMI_KEYWORDS)
            sys.stderr.write(f"Invalid string keyword: {keyword}\nValid string keywords are:\n{valid}\n")
            return 2
        sys.stdout.write(f"{hardware[_DMI_KEYWORDS[keyword]]}\n")
        return 0
    sys.stdout.write(
        "# dmidecode 3.4\nHandle 0x0001, DMI type 1, 27 bytes\nSystem Information\n"
        f"\tManufacturer: {hardware['manufacturer']}\n\tProduct Name: {hardware['product']}\n"
        f"\tSerial Number: {hardware['serial']}\n\tUUID: {hardware['uuid']}\n"
    )
    return 0


def mdadm(args: list[str]) -> int:
    """No software RAID in the lab: answer as mdadm does on a machine without arrays."""
    devices = [a for a in args if a.startswith("/dev/")]
    if any(a in ("--stop", "-S") for a in args):
        for device in devices or ["/dev/md0"]:
            sys.stderr.write(f"mdadm: error opening {device}: No such file or directory\n")
        return 1
    if any(a in ("--examine", "-E") for a in args):
        for device in devices:
            sys.stderr.write(f"mdadm: No md superblock detected on {device}.\n")
        return 1
    if any(a == "--zero-superblock" for a in args):
        for device in devices:
            sys.stderr.write(f"mdadm: Unrecognised md component device - {device}\n")
        return 1
    if any(a in ("--assemble", "-A") for a in args):
        sys.stderr.write("mdadm: No arrays found in config file or automatically\n")
        return 1
    return 0


def succeed(args: list[str]) -> int:
    """`udevadm settle`, `partprobe`: nothing to wait for in the lab."""
    return 0


def installimage(args: list[str]) -> int:
    sys.stderr.write("installimage is not available in the lab's rescue system (use dd)\n")
    return 1


PROGRAMS: dict[str, Callable[[list[str]], int]] = {
    "lsblk": lsblk,
    "reboot": power_command("reboot"),
    "poweroff": power_command("poweroff"),
    "halt": power_command("halt"),
    "shutdown": shutdown,
    "systemctl": systemctl,
    "telinit": telinit,
    "init": telinit,
    "dmidecode": dmidecode,
    "mdadm": mdadm,
    "udevadm": succeed,
    "partprobe": succeed,
    "installimage": installimage,
}

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
