"""Deploy one stack from CI through the Automation API: `preview` as a gate, then `up`.

    .venv/bin/python -m ci.deploy --stack prod --outputs-dir out/ [--secret-output talosconfig ...] [--preview-only]

The backend (PULUMI_BACKEND_URL: a file:// folder that persists between runs, or s3://...) and the passphrase
(PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE) come from the environment: the driver refuses to run
without them rather than fall back to a state folder an ephemeral runner would lose. The CLI is the one tools/env.py
finds (built by the setup, or the pinned version on PATH). Each stack output is written to <outputs-dir>/<name>
(strings as they are, other values as JSON); a secret output only when named with --secret-output, then with mode
0600. The engine's own output is streamed as it comes; it never shows secret values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pulumi import automation as auto

from talos.secrets import write_private_file
from tools.env import PROJECT_DIR, EngineUnavailable, engine_env, pulumi_bin_dir

Printer = Callable[[str], None]
_PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


class DeployError(RuntimeError):
    """The deployment stopped; the message names the step and what to do."""


@dataclass(frozen=True)
class DeployRequest:
    stack: str
    outputs_dir: Path
    secret_outputs: frozenset[str] = frozenset()
    preview_only: bool = False
    work_dir: Path = PROJECT_DIR


def require_environment(env: Mapping[str, str]) -> None:
    """Refuse to run without an explicit backend and passphrase."""
    if not env.get("PULUMI_BACKEND_URL"):
        raise DeployError("PULUMI_BACKEND_URL is not set (fix: point it at state that persists between CI runs)")
    if not any(name in env for name in _PASSPHRASE_VARS):
        raise DeployError("no passphrase (fix: set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE)")


def open_stack(request: DeployRequest, env: Mapping[str, str]) -> auto.Stack:
    """Select the stack (create it in the backend on first use) with the CLI tools/env.py found."""
    workspace = auto.LocalWorkspaceOptions(
        work_dir=str(request.work_dir),
        env_vars=dict(env),
        secrets_provider="passphrase",
        pulumi_command=auto.PulumiCommand(root=str(pulumi_bin_dir().parent)),
    )
    return auto.create_or_select_stack(stack_name=request.stack, work_dir=str(request.work_dir), opts=workspace)


def deploy(request: DeployRequest, env: Mapping[str, str], echo: Printer = print) -> list[Path]:
    """Preview, then (unless preview-only) up and write the outputs; returns the files written."""
    try:
        stack = open_stack(request, env)
    except (auto.errors.CommandError, EngineUnavailable) as err:
        raise DeployError(f"selecting stack {request.stack} failed: {err}") from None
    echo(f"deploy: preview of {request.stack} (the gate)")
    errors = EngineErrors()
    try:
        preview = stack.preview(on_output=echo, on_event=errors, color="never")
    except auto.errors.CommandError as err:
        raise DeployError(f"preview of {request.stack} failed, nothing was changed: {errors.describe(err)}") from None
    echo(f"deploy: preview passed: {_summary(preview.change_summary)}")
    if request.preview_only:
        return []
    echo(f"deploy: up of {request.stack}")
    try:
        up = stack.up(on_output=echo, on_event=errors, color="never")
    except auto.errors.CommandError as err:
        cause = errors.describe(err)
        raise DeployError(
            f"up of {request.stack} failed: {cause} (fix it, then re-run: up resumes from the state)"
        ) from None
    echo(f"deploy: up finished: {_summary(up.summary.resource_changes or {})}")
    return write_outputs(up.outputs, request.outputs_dir, request.secret_outputs, echo)


def write_outputs(
    outputs: Mapping[str, auto.OutputValue], directory: Path, secret_names: Iterable[str], echo: Printer = print
) -> list[Path]:
    """Write each output to directory/<name>; secret ones only when asked for, readable by the owner only."""
    wanted = set(secret_names)
    missing = wanted - set(outputs)
    if missing:
        known = ", ".join(sorted(outputs)) or "none"
        raise DeployError(f"--secret-output {', '.join(sorted(missing))}: no such stack output (outputs: {known})")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, output in sorted(outputs.items()):
        path = directory / name
        text = output.value if isinstance(output.value, str) else json.dumps(output.value, indent=2)
        if output.secret and name not in wanted:
            echo(f"deploy: output {name} is secret, not written (ask with --secret-output {name})")
            continue
        if output.secret:
            write_private_file(path, text)
        else:
            path.write_text(text, encoding="utf-8")
        echo(f"deploy: output {name} -> {path}" + (" (secret, mode 0600)" if output.secret else ""))
        written.append(path)
    return written


def _summary(changes: Mapping[str, int]) -> str:
    """`create 2, same 1` from an operation map (keys may be OpType members or plain strings)."""
    counts = sorted((str(getattr(op, "value", op)), count) for op, count in changes.items())
    return ", ".join(f"{op} {count}" for op, count in counts) or "no resources"


class EngineErrors:
    """Collects the engine's error diagnostics from its event stream: the cause, whatever else the run printed."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, event: auto.EngineEvent) -> None:
        diagnostic = event.diagnostic_event
        if diagnostic is not None and diagnostic.severity == "error":
            message = diagnostic.message.strip()
            if message not in self.messages:
                self.messages.append(message)

    def describe(self, err: auto.errors.CommandError, count: int = 15) -> str:
        """The errors the engine reported, or the command's last lines when it reported none."""
        return "\n".join(self.messages or str(err).strip().splitlines()[-count:])


def parse_args(argv: list[str]) -> DeployRequest:
    parser = argparse.ArgumentParser(prog="python -m ci.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name, e.g. prod")
    parser.add_argument("--outputs-dir", type=Path, default=Path("out"), help="where stack outputs are written")
    parser.add_argument(
        "--secret-output", action="append", default=[], metavar="NAME", help="also write this secret output"
    )
    parser.add_argument("--preview-only", action="store_true", help="run the gate only")
    parser.add_argument("--work-dir", type=Path, default=PROJECT_DIR, help="the Pulumi project directory")
    args = parser.parse_args(argv)
    return DeployRequest(args.stack, args.outputs_dir, frozenset(args.secret_output), args.preview_only, args.work_dir)


def main(argv: list[str]) -> int:
    request = parse_args(argv)
    try:
        require_environment(os.environ)
        deploy(request, engine_env(lab=False))
    except (DeployError, EngineUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
