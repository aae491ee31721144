"""`python -m lab`: start the default lab, print its endpoints, write them to `.lab/lab.json`, serve until ^C.

The default lab is issue 11's: three dedicated servers in Robot (two for control planes, one worker) and
an empty Cloud project where the program creates its Cloud servers. Credentials are kept from an earlier
`.lab/lab.json` so a stack configured against the lab keeps working across restarts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from lab.delays import Delays
from lab.images.raw import ImageProfile
from lab.services import CHECKOUT, Lab, LabSpec

LAB_JSON = CHECKOUT / ".lab" / "lab.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.splitlines()[0])
    parser.add_argument("--net", type=int, default=10, help="second octet of the lab's 127.x.y.z addresses")
    parser.add_argument("--scale", type=float, default=0.02, help="factor applied to real physical delays")
    parser.add_argument("--bandwidth", type=float, default=125e6, help="image download bytes per second")
    parser.add_argument("--image-size", type=int, default=64, help="synthetic raw image size in MiB")
    parser.add_argument("--http-port", type=int, default=80, help="port of Robot, Cloud and the factory")
    parser.add_argument("--json", type=Path, default=LAB_JSON, help="where to write endpoints and credentials")
    return parser.parse_args(argv)


def previous_credentials(path: Path) -> dict[str, Any]:
    """Credentials of the last run, so stacks pointing at the lab keep working."""
    try:
        data = json.loads(path.read_text())
        return {
            "robot_user": data["robot"]["user"],
            "robot_password": data["robot"]["password"],
            "cloud_token": data["cloud"]["token"],
        }
    except (OSError, ValueError, KeyError):
        return {}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("python -m lab: run as root (rescue sandboxes need loop devices and namespaces)", file=sys.stderr)
        return 2
    spec = LabSpec(
        delays=Delays.realistic().scaled(args.scale, bandwidth=args.bandwidth),
        image_profile=ImageProfile(raw_size=args.image_size << 20),
        net=args.net,
        http_port=args.http_port,
        state_dir=CHECKOUT / ".lab" / "state",
        **previous_credentials(args.json),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with Lab(spec) as lab:
        lab.write_json(args.json)
        info = lab.to_json()
        print(f"lab {info['net']} up (delays x{lab.delays.scale:g}); endpoints and credentials in {args.json}")
        print(f"  robot   {info['robot']['url']}  (user {info['robot']['user']})")
        print(f"  cloud   {info['cloud']['url']}")
        print(f"  factory {info['image_factory']['url']}")
        print(f"  dns     {info['dns']['address']}:{info['dns']['port']} (udp)")
        for server in info["servers"]:
            disks = ", ".join(d["name"] for d in server["disks"])
            print(f"  robot server {server['number']} {server['product']} at {server['address']} ({disks})")
        sys.stdout.flush()
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
