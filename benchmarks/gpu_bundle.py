"""Prepare, on a connected machine, the wheels `benchmarks/gpu_run.sh` installs on an offline GPU machine.

The GPU machine is assumed to have Python with torch and transformers (and what they depend on), and often
the usual scientific stack. This command collects every other runtime dependency of mu-eval that the machine
lacks, at the versions installed here (the project's pins), and a wheel of mu-eval itself, into one folder
with a manifest (names, versions, the Python they are for, each wheel's sha256, what was left out):

    python -m benchmarks.gpu_bundle --have freeze.txt        # -> benchmarks/gpu_bundle/ (ignored by git)
    python -m benchmarks.gpu_bundle --have freeze.txt --python-version 3.12 --platform manylinux_2_28_x86_64

`--have FILE` takes the GPU machine's `pip list --format=freeze` (an offline command there) and leaves out
every distribution it has at a version that satisfies the requirements placed on it (benchmarks.
bundle_selection says which); against the freeze of a typical CUDA image (tests/benchmarks/
gpu_image_freeze.txt) that leaves 8 wheels and mu-eval's, 3.1 MB measured. Without `--have` (a machine with
nothing but torch and transformers) the folder measured 125.6 MB and cannot fit the 60 MB a bundle must stay
under (what can be copied to such a machine is 64 MiB in all): pyarrow (55 MB, which `datasets` needs) and
scipy (35 MB, which the KS test and scikit-learn need) are 90 MB by themselves. Over the limit, the command
reports the largest wheels and exits 1 (`--max-mb 0` accepts any size).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.bundle_selection import PROVIDED, read_freeze, select
from mu_eval.file_hashes import file_sha256

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = Path(__file__).resolve().parent / "gpu_bundle"
MAX_BYTES = 60 * 1000 * 1000
MANIFEST = "manifest.json"


def bundled_distributions() -> dict[str, str]:
    """mu-eval's runtime dependencies that torch and transformers do not bring, with their versions here."""
    return select({}).bundle


def _pip(*args: str, quiet_failure: bool = False) -> None:
    """pip in this interpreter; `quiet_failure`: its error output is dropped (a failure the caller handles)."""
    subprocess.run([sys.executable, "-m", "pip", *args], check=True,
                   stderr=subprocess.DEVNULL if quiet_failure else None)


def collect_wheels(target: Path, distributions: dict[str, str], python_version: str | None,
                   platform: str | None) -> list[Path]:
    """One wheel per distribution (a binary one for the target interpreter; a pure one built here for a
    distribution published as source only), and mu-eval's own."""
    target.mkdir(parents=True, exist_ok=True)
    cross = ["--only-binary=:all:"]
    if python_version:
        cross += ["--python-version", python_version]
    if platform:
        cross += ["--platform", platform]
    for name, version in distributions.items():
        before = set(target.iterdir())
        from_source = False
        try:
            _pip("download", "--quiet", "--no-deps", *cross, "--dest", str(target), f"{name}=={version}",
                 quiet_failure=True)
        except subprocess.CalledProcessError:  # source only: a pure-Python wheel built here serves any target
            from_source = True
            print(f"gpu_bundle: no wheel of {name}=={version} for the target; building one from its source")
            _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(target), f"{name}=={version}")
        new = set(target.iterdir()) - before
        built = [path for path in new if path.suffix == ".whl"]
        if len(built) != 1:
            raise SystemExit(f"gpu_bundle: expected one wheel for {name}=={version}, got {sorted(map(str, new))}")
        if from_source and not built[0].name.endswith("-none-any.whl"):
            raise SystemExit(f"gpu_bundle: {name}=={version} has no wheel for the target and builds "
                             f"{built[0].name}, which is not pure Python")
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(target), str(ROOT))
    return sorted(target.glob("*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder written (default: benchmarks/gpu_bundle)")
    parser.add_argument("--python-version", default=None,
                        help="the GPU machine's Python, e.g. 3.12 (default: this interpreter's)")
    parser.add_argument("--platform", default=None, help="its wheel platform tag (default: this machine's)")
    parser.add_argument("--have", type=Path, default=None,
                        help="the GPU machine's `pip list --format=freeze`: what it has at a version mu-eval's "
                             "requirements accept is left out")
    parser.add_argument("--max-mb", type=float, default=MAX_BYTES / 1e6, help="size limit in MB (0: none)")
    args = parser.parse_args(argv)
    if args.have and not args.have.is_file():
        parser.error(f"--have {args.have}: no such file")
    selection = select(read_freeze(args.have) if args.have else {})
    if args.have:
        print(f"gpu_bundle: the GPU machine has {len(selection.left_out)} of the distributions mu-eval needs at "
              f"versions it accepts: {', '.join(f'{name} {version}' for name, version in selection.left_out.items())}")
    for name, why in selection.incompatible.items():
        print(f"gpu_bundle: {name} {selection.bundle[name]} stays in the bundle: {why}")
    if args.dir.exists():
        shutil.rmtree(args.dir)
    wheels = collect_wheels(args.dir, selection.bundle, args.python_version, args.platform)
    sizes = {wheel.name: wheel.stat().st_size for wheel in wheels}
    total = sum(sizes.values())
    python_version = args.python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    manifest = {"distributions": selection.bundle, "python_version": python_version, "platform": args.platform,
                "provided_by_the_machine": list(PROVIDED), "left_out_as_present": selection.left_out,
                "kept_though_present": selection.incompatible,
                "wheels": {wheel.name: file_sha256(wheel) for wheel in wheels}, "bytes": total}
    (args.dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.dir}: {len(wheels)} wheels ({', '.join(sorted(selection.bundle))} and mu-eval), "
          f"{total / 1e6:.1f} MB")
    if args.max_mb and total > args.max_mb * 1e6:
        largest = ", ".join(f"{name.split('-')[0]} {size / 1e6:.0f} MB"
                            for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:4])
        print(f"gpu_bundle: {total / 1e6:.1f} MB is over the {args.max_mb:.0f} MB limit (largest: {largest}); pass "
              "the GPU machine's `pip list --format=freeze` as --have FILE to leave out what it has, or --max-mb 0",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
