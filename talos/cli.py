"""`python -m talos.cli`: the talosctl steps of the runbook, done by this package (no talosctl needed).

gen secrets [-o secrets.yaml]                        like `talosctl gen secrets`
gen config NAME ENDPOINT [--with-secrets F] ...      like `talosctl gen config`, plus real talosconfig nodes
render-lab --out DIR                                 the lab cluster's secrets, per-node configs, talosconfig
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from talos.config import ClusterOptions, Role, generate_config
from talos.documents import dump_documents
from talos.errors import TalosError
from talos.patches import Patch, load_patches
from talos.secrets import SecretsBundle, load_secrets, save_secrets, write_private_file
from talos.talosconfig import build_talosconfig, save_talosconfig
from talos.versions import CURRENT, contract_for

# The lab cluster of the README's main job: three control planes and two workers on lab addresses.
LAB_NODES: tuple[tuple[str, Role, str], ...] = (
    ("cp-1", "controlplane", "127.10.0.11"),
    ("cp-2", "controlplane", "127.10.0.12"),
    ("cp-3", "controlplane", "127.10.0.13"),
    ("worker-1", "worker", "127.10.0.21"),
    ("worker-2", "worker", "127.10.0.22"),
)
LAB_CLUSTER_PATCH = """\
cluster:
    allowSchedulingOnControlPlanes: true
    network:
        cni:
            name: none
    proxy:
        disabled: true
"""


def _hostname_patch(hostname: str) -> str:
    return f'apiVersion: v1alpha1\nkind: HostnameConfig\nauto: "off"\nhostname: {hostname}\n'


def _options(args: argparse.Namespace) -> ClusterOptions:
    return ClusterOptions(
        cluster_name=args.name,
        endpoint=args.endpoint,
        talos_version=args.talos_version,
        kubernetes_version=args.kubernetes_version,
        dns_domain=args.dns_domain,
        installer_image=args.install_image,
        install_disk=args.install_disk,
    )


def _gen_secrets(args: argparse.Namespace) -> None:
    bundle = SecretsBundle.generate(contract_for(args.talos_version))
    if args.output == "-":
        sys.stdout.write(bundle.to_yaml())
    else:
        save_secrets(bundle, args.output)
        print(f"wrote {args.output}")


def _gen_config(args: argparse.Namespace) -> None:
    options = _options(args)
    bundle = load_secrets(args.with_secrets) if args.with_secrets else SecretsBundle.generate(options.contract)
    common = load_patches(args.config_patch)
    by_role: dict[Role, list[Patch]] = {
        "controlplane": [*common, *load_patches(args.config_patch_control_plane)],
        "worker": [*common, *load_patches(args.config_patch_worker)],
    }
    # Everything is built (and checked) before anything is written: a refusal leaves no partial output.
    configs = {role: generate_config(options, bundle, role, patches) for role, patches in by_role.items()}
    talosconfig = build_talosconfig(options.cluster_name, bundle, endpoints=args.endpoints, nodes=args.nodes)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for role, documents in configs.items():
        write_private_file(out / f"{role}.yaml", dump_documents(documents))
    save_talosconfig(talosconfig, out / "talosconfig")
    print(f"wrote controlplane.yaml, worker.yaml, talosconfig to {out}")


def _render_lab(args: argparse.Namespace) -> None:
    options = ClusterOptions(cluster_name="lab", endpoint="https://api.lab.internal:6443")
    bundle = SecretsBundle.generate(options.contract)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_secrets(bundle, out / "secrets.yaml")
    cluster = load_patches([LAB_CLUSTER_PATCH])
    for name, role, _address in LAB_NODES:
        patches = [*cluster, *load_patches([_hostname_patch(name)])]
        _write_config(out / f"{name}.yaml", options, bundle, role, patches)
        print(f"{name}: {role} config rendered and validated")
    addresses = [address for _, role, address in LAB_NODES if role == "controlplane"]
    nodes = [address for *_, address in LAB_NODES]
    save_talosconfig(build_talosconfig("lab", bundle, endpoints=addresses, nodes=nodes), out / "talosconfig")
    print(f"wrote secrets.yaml, {len(LAB_NODES)} machine configs and talosconfig to {out} (mode 0600)")


def _write_config(path: Path, options: ClusterOptions, bundle: SecretsBundle, role: Role, patches: list[Patch]) -> None:
    write_private_file(path, dump_documents(generate_config(options, bundle, role, patches)))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m talos.cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("gen", help="generate secrets or machine configs").add_subparsers(
        dest="what", required=True
    )
    secrets = gen.add_parser("secrets", help="a new secrets bundle")
    secrets.add_argument("-o", "--output", default="secrets.yaml", help="file to write, - for stdout")
    secrets.add_argument("--talos-version", default=CURRENT.talos_version)
    secrets.set_defaults(run=_gen_secrets)

    config = gen.add_parser("config", help="controlplane.yaml, worker.yaml and talosconfig")
    config.add_argument("name", help="cluster name")
    config.add_argument("endpoint", help="https://<host>:6443")
    config.add_argument("--with-secrets", help="secrets.yaml to use (default: generate one)")
    config.add_argument("--talos-version", default=CURRENT.talos_version)
    config.add_argument("--kubernetes-version")
    config.add_argument("--dns-domain", default="cluster.local")
    config.add_argument("--install-image", help="installer image (default: pinned to --talos-version)")
    config.add_argument("--install-disk", default="/dev/sda")
    for flag in ("--config-patch", "--config-patch-control-plane", "--config-patch-worker"):
        config.add_argument(flag, action="append", default=[], help="@file or inline patch; repeatable")
    config.add_argument("--endpoints", nargs="*", default=[], help="talosconfig endpoints (node addresses)")
    config.add_argument("--nodes", nargs="*", default=[], help="talosconfig nodes")
    config.add_argument("-o", "--output-dir", default=".")
    config.set_defaults(run=_gen_config)

    lab = commands.add_parser("render-lab", help="render the lab cluster's files")
    lab.add_argument("--out", default=".lab/out")
    lab.set_defaults(run=_render_lab)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except TalosError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
