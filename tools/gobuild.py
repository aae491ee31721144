"""Build the Go tools the tests need (Pulumi CLI, plugins, the Talos oracle) into a cache outside the checkout.

Each tool is a small wrapper Go module of this project (its own go.mod/go.sum, pinned requirements). A build
is keyed by the wrapper's files, the build flags and the Go version, so a fresh clone reuses an earlier build
and any change to the pins rebuilds. Builds run with cgo off, `-trimpath`, and the module cache and build
cache of the machine (also outside the checkout). Only the Go module proxy is contacted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.paths import cache_root

Progress = Callable[[str], None]

TOOLS_DIR = Path(__file__).resolve().parent


class BuildError(RuntimeError):
    """A Go tool could not be built; says which step failed and how to retry."""


def go_available() -> bool:
    return shutil.which("go") is not None


@dataclass(frozen=True)
class GoTool:
    """A wrapper module under tools/ and the binaries built from it."""

    name: str
    module_dir: Path
    binaries: tuple[tuple[str, str], ...]
    """(package import path, output binary name) pairs."""
    ldflags: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    extra_files: tuple[tuple[str, str, str], ...] = field(default=())
    """(required module path, file path inside it, installed name): files taken from the module cache at build
    time and installed executable next to the binaries, e.g. launcher scripts shipped inside an upstream module."""
    generate: tuple[tuple[str, ...], ...] = field(default=())
    """Commands run after building, in the bin directory, a built binary first (e.g. `("pulumi-resource-x",
    "tfgen", "schema", "--out", "x-schema")`): files generated at build time that the binaries read at run time."""

    def key(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.module_dir.rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(self.module_dir).as_posix().encode())
                digest.update(path.read_bytes())
        digest.update(repr((self.binaries, self.ldflags, self.tags, self.extra_files, self.generate)).encode())
        digest.update(_go_version().encode())
        return digest.hexdigest()[:16]

    def install_dir(self) -> Path:
        return cache_root() / "tools" / f"{self.name}-{self.key()}"

    def bin_dir(self) -> Path:
        return self.install_dir() / "bin"

    def is_built(self) -> bool:
        return (self.install_dir() / ".complete").exists()


def _go_version() -> str:
    if not go_available():
        return "no-go"
    return subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"})
    return env


def _run_step(step: str, tool: GoTool, argv: list[str], progress: Progress, cwd: Path | None = None) -> str:
    """Run one build command with a heartbeat so a long build is never silent."""
    started = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(20):
            progress(f"{tool.name}: {step} still running ({time.monotonic() - started:.0f}s)")

    thread = threading.Thread(target=heartbeat, daemon=True)
    thread.start()
    try:
        result = subprocess.run(argv, cwd=cwd or tool.module_dir, env=_go_env(), capture_output=True, text=True)
    finally:
        done.set()
        thread.join()
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-25:])
        raise BuildError(
            f"{tool.name}: {step} failed (exit {result.returncode}):\n{tail}\n"
            f"retry with: .venv/bin/python -m tools.build {tool.name}  (module cache problems: go clean -modcache)"
        )
    return result.stdout


def _module_path(tool: GoTool, module: str) -> Path:
    out = _run_step(f"locate {module}", tool, ["go", "list", "-m", "-f", "{{.Dir}}", module], lambda _: None)
    return Path(out.strip())


def build(tool: GoTool, progress: Progress = print) -> Path:
    """Build `tool` unless a build with the same key is cached; return its bin directory."""
    if tool.is_built():
        progress(f"{tool.name}: cached in {tool.install_dir()}")
        return tool.bin_dir()
    if not go_available():
        raise BuildError(f"{tool.name}: Go is not installed; install Go or the official binaries instead")
    started = time.monotonic()
    target = tool.install_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{tool.name}-", dir=target.parent))
    try:
        progress(f"{tool.name}: downloading modules")
        # Only the modules the binaries need: `go mod download` would fetch the whole graph, and the proxy may
        # lack versions (or their .info files) that no build uses.
        packages = [package for package, _ in tool.binaries]
        _run_step("go list -deps (module download)", tool, ["go", "list", "-deps", *packages], progress)
        for package, binary in tool.binaries:
            progress(f"{tool.name}: building {binary}")
            argv = ["go", "build", "-trimpath", "-o", str(staging / "bin" / binary)]
            if tool.tags:
                argv += ["-tags", ",".join(tool.tags)]
            argv += ["-ldflags", " ".join(("-s", "-w", *tool.ldflags)), package]
            _run_step(f"go build {binary}", tool, argv, progress)
        for module, rel, name in tool.extra_files:
            src = _module_path(tool, module) / rel
            dest = staging / "bin" / name
            shutil.copyfile(src, dest)
            dest.chmod(0o755)
        for command in tool.generate:
            progress(f"{tool.name}: generating with {' '.join(command)}")
            binary, *args = command
            _run_step(
                f"generate ({' '.join(command)})",
                tool,
                [str(staging / "bin" / binary), *args],
                progress,
                cwd=staging / "bin",
            )
        (staging / ".complete").write_text(f"built in {time.monotonic() - started:.1f}s\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    progress(f"{tool.name}: built in {time.monotonic() - started:.0f}s -> {target}")
    return tool.bin_dir()


def main(tools: dict[str, GoTool], argv: list[str]) -> int:
    """Build the named tools (all when none is named), printing progress and the total time."""
    names = argv or list(tools)
    started = time.monotonic()
    for name in names:
        if name not in tools:
            print(f"unknown tool {name!r}; known: {', '.join(tools)}", file=sys.stderr)
            return 2
        try:
            build(tools[name], progress=lambda line: print(line, flush=True))
        except BuildError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    print(f"tools ready in {time.monotonic() - started:.0f}s", flush=True)
    return 0
