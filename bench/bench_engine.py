"""Engine figures: tool build times (cold, warm, cached) and `pulumi preview` wall times.

    .venv/bin/python -m bench.bench_engine            # everything (the cold builds take several minutes)
    .venv/bin/python -m bench.bench_engine --quick    # skip the cold builds

cold: empty module cache, build cache and tool cache (everything downloaded and compiled); warm: Go's caches as
they are, empty tool cache (compile what changed, link); cached: the setup's own cache hit. Scratch caches live in
a temporary directory; the machine's caches are only read.

Previews: the secrets-only chain program (tests/data/secrets_program), and the project's real lab stack (the
whole program, five nodes) deployed with `pulumi up` on a lab of its own, then previewed with nothing to change
(needs root: the lab's rescue systems).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lab.services import Lab, LabSpec
from tests.e2e.conftest import lab_stack
from tools.build import TOOLS
from tools.env import LAB_PASSPHRASE, PROJECT_DIR, copy_program, engine_env

_PREVIEW_RUNS = 5


def _timed(argv: list[str], env: dict[str, str], cwd: Path = PROJECT_DIR) -> float:
    started = time.monotonic()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def _build(name: str, env: dict[str, str]) -> float:
    return _timed([sys.executable, "-m", "tools.build", name], env)


def bench_builds(scratch: Path, cold: bool) -> None:
    modes = {"warm": {"TALOS_HETZNER_CACHE": str(scratch / "warm-tools")}}
    if cold:
        modes = {
            "cold": {
                "TALOS_HETZNER_CACHE": str(scratch / "cold-tools"),
                "GOCACHE": str(scratch / "gocache"),
                "GOMODCACHE": str(scratch / "gomodcache"),
            },
            **modes,
        }
    modes["cached"] = {}
    for mode, overrides in modes.items():
        env = {**os.environ, **overrides}
        for name in TOOLS:
            print(f"build {mode:6} {name:14} {_build(name, env):7.2f} s", flush=True)
    if cold:
        subprocess.run(["go", "clean", "-modcache"], env={**os.environ, **modes["cold"]}, check=True)


def bench_chain_preview(scratch: Path) -> None:
    directory = copy_program(scratch / "project", PROJECT_DIR / "tests/data/secrets_program")
    base = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    base |= {
        "PULUMI_BACKEND_URL": (scratch / "backend").as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": LAB_PASSPHRASE,
        "PYTHONPATH": str(PROJECT_DIR),
    }
    (scratch / "backend").mkdir()
    env = engine_env(lab=True, state_dir=scratch / "state", base=base)
    pulumi = ["pulumi", "--non-interactive"]
    _timed([*pulumi, "stack", "init", "lab"], env, directory)
    print(f"preview chain (empty stack)       {_timed([*pulumi, 'preview'], env, directory):7.2f} s", flush=True)
    print(f"up chain (create)                 {_timed([*pulumi, 'up', '--yes'], env, directory):7.2f} s", flush=True)
    runs = [_timed([*pulumi, "preview"], env, directory) for _ in range(_PREVIEW_RUNS)]
    print(f"preview chain (no changes) median {statistics.median(runs):7.2f} s of {_PREVIEW_RUNS}", flush=True)


def bench_lab_preview(scratch: Path) -> None:
    """The program's lab stack: `pulumi preview` of the empty stack, `up`, then previews with nothing to change."""
    if os.geteuid() != 0:
        print("preview lab stack: skipped (needs root: the lab's rescue systems)", flush=True)
        return
    home = scratch / "lab-home"
    home.mkdir()
    with Lab(LabSpec()) as lab:
        try:
            project = lab_stack(lab, scratch / "lab", home)
        except (pytest.skip.Exception, pytest.fail.Exception) as missing:  # the test fixture's verdict: no plugin
            print(f"preview lab stack: skipped ({missing.msg})", flush=True)
            return
        started = time.monotonic()
        project.pulumi("preview")
        print(f"preview lab stack (empty stack)   {time.monotonic() - started:7.2f} s", flush=True)
        started = time.monotonic()
        project.pulumi("up", "--yes", "--skip-preview")
        print(f"up lab stack (five nodes)         {time.monotonic() - started:7.2f} s", flush=True)
        runs = []
        for _ in range(_PREVIEW_RUNS):
            started = time.monotonic()
            project.pulumi("preview", "--expect-no-changes")
            runs.append(time.monotonic() - started)
        median = statistics.median(runs)
        print(f"preview lab stack (no changes)    {median:7.2f} s median of {_PREVIEW_RUNS}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the cold builds")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    try:
        bench_builds(scratch, cold=not args.quick)
        bench_chain_preview(scratch)
        bench_lab_preview(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
