"""Prepare, on a connected machine, the wheels `benchmarks/gpu_run.sh` installs on an offline GPU machine.

The GPU machine is assumed to have Python with torch and transformers (and what they depend on). This command
collects every other runtime dependency of mu-eval, at the versions installed here (the project's pins), and
a wheel of mu-eval itself, into one folder with a manifest (names, versions, the Python they are for, each
wheel's sha256):

    python -m benchmarks.gpu_bundle                          # -> benchmarks/gpu_bundle/ (ignored by git)
    python -m benchmarks.gpu_bundle --have gpu-freeze.txt    # leave out what the GPU machine has
    python -m benchmarks.gpu_bundle --python-version 3.12 --platform manylinux_2_28_x86_64

On a machine with nothing but torch and transformers the folder is about 125 MB, most of it pyarrow (55 MB,
which `datasets` needs) and scipy (35 MB): over the 60 MB a bundle should stay under, which this command
then reports, with the largest wheels, and exits 1 (`--max-mb 0` accepts any size). `--have FILE` takes the
GPU machine's `pip freeze` (an offline command there) and leaves out every distribution it lists at the same
version: a machine with the usual scientific stack then needs only a few MB.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = Path(__file__).resolve().parent / "gpu_bundle"
#: What the GPU machine brings; everything these need comes with them there.
PROVIDED = ("torch", "transformers")
MAX_BYTES = 60 * 1000 * 1000
MANIFEST = "manifest.json"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(roots: tuple[str, ...] | list[str]) -> dict[str, str]:
    """{canonical name: installed version} of the roots and everything they require (no extras), from the
    metadata of this environment; a requirement that is not installed is an error."""
    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    stack = list(roots)
    while stack:
        name = stack.pop()
        key = canonical(name)
        if key in found:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError as error:
            raise SystemExit(f"gpu_bundle: {name} is required but not installed here; run this in the project's "
                             "virtual environment (pip install -c constraints.txt -e .)") from error
        found[key] = distribution.version
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                stack.append(requirement.name)
    return found


def bundled_distributions() -> dict[str, str]:
    """mu-eval's runtime dependencies that torch and transformers do not bring, with their versions here."""
    ours = requirement_closure(["mu-eval"])
    provided = requirement_closure(list(PROVIDED))
    return {name: version for name, version in sorted(ours.items()) if name not in provided and name != "mu-eval"}


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


def read_freeze(path: Path) -> dict[str, str]:
    """{canonical name: version} from `pip freeze` output (lines "name==version"; others are skipped)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, separator, version = line.strip().partition("==")
        if separator and name and not name.startswith("#"):
            found[canonical(name)] = version.strip()
    return found


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder written (default: benchmarks/gpu_bundle)")
    parser.add_argument("--python-version", default=None,
                        help="the GPU machine's Python, e.g. 3.12 (default: this interpreter's)")
    parser.add_argument("--platform", default=None, help="its wheel platform tag (default: this machine's)")
    parser.add_argument("--have", type=Path, default=None,
                        help="the GPU machine's `pip freeze`: distributions it has at the pinned version are left out")
    parser.add_argument("--max-mb", type=float, default=MAX_BYTES / 1e6, help="size limit in MB (0: none)")
    args = parser.parse_args(argv)
    distributions = bundled_distributions()
    present = read_freeze(args.have) if args.have else {}
    distributions = {name: version for name, version in distributions.items() if present.get(name) != version}
    if args.dir.exists():
        shutil.rmtree(args.dir)
    wheels = collect_wheels(args.dir, distributions, args.python_version, args.platform)
    sizes = {wheel.name: wheel.stat().st_size for wheel in wheels}
    total = sum(sizes.values())
    python_version = args.python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    manifest = {"distributions": distributions, "python_version": python_version, "platform": args.platform,
                "provided_by_the_machine": list(PROVIDED), "left_out_as_present": sorted(set(present) & set(
                    bundled_distributions())),
                "wheels": {wheel.name: sha256(wheel) for wheel in wheels}, "bytes": total}
    (args.dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.dir}: {len(wheels)} wheels, {total / 1e6:.1f} MB")
    if args.max_mb and total > args.max_mb * 1e6:
        largest = ", ".join(f"{name.split('-')[0]} {size / 1e6:.0f} MB"
                            for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:4])
        print(f"gpu_bundle: {total / 1e6:.1f} MB is over the {args.max_mb:.0f} MB limit (largest: {largest}); pass "
              "the GPU machine's `pip freeze` as --have FILE to leave out what it has, or --max-mb 0",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
