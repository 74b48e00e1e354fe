#!/usr/bin/env bash
# Every benchmark on one offline GPU machine, in one command:
#
#     bash benchmarks/gpu_run.sh OUTPUT_DIR
#
# The machine needs Python with torch (CUDA) and transformers, and this checkout with benchmarks/gpu_bundle/
# in it, made on a connected machine by `python -m benchmarks.gpu_bundle` (docs/performance.md). The script
# makes a virtual environment that sees every package the machine has, lets pip install into it, from the
# bundle only (no network), whatever mu-eval needs and the machine lacks, runs the four benchmark scripts at
# sizes meant to finish within 9 minutes in all,
# and writes their JSON files, logs and the results table into OUTPUT_DIR. Any missing piece, failed step
# or overrun stops it with a message and a non-zero status.
#
# Environment: PYTHON (default python3), MU_EVAL_GPU_SECONDS (time budget, default 540),
# MU_EVAL_MAX_NEW_TOKENS (generation length, default 64), MU_EVAL_REHEARSAL=1 (CPU rehearsal: toy sizes,
# no GPU needed; its results table is expected to refuse the toy files).
set -euo pipefail

fail() { echo "gpu_run: $*" >&2; exit 1; }

[ $# -eq 1 ] || fail "usage: bash benchmarks/gpu_run.sh OUTPUT_DIR"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$(mkdir -p "$1" && cd "$1" && pwd)" || fail "cannot create the output folder $1"
PYTHON="${PYTHON:-python3}"
BUDGET="${MU_EVAL_GPU_SECONDS:-540}"
MAX_NEW="${MU_EVAL_MAX_NEW_TOKENS:-64}"
REHEARSAL="${MU_EVAL_REHEARSAL:-0}"
BUNDLE="$HERE/gpu_bundle"
START=$(date +%s)

command -v "$PYTHON" >/dev/null || fail "no $PYTHON on PATH (set PYTHON=...)"
[ -f "$BUNDLE/manifest.json" ] || fail "no $BUNDLE/manifest.json: run 'python -m benchmarks.gpu_bundle' on a connected machine and copy benchmarks/gpu_bundle/ here"
"$PYTHON" - "$BUNDLE" "$REHEARSAL" <<'EOF' || fail "the machine or the bundle is not ready (message above)"
import hashlib, json, sys
from pathlib import Path
bundle, rehearsal = Path(sys.argv[1]), sys.argv[2] == "1"
manifest = json.loads((bundle / "manifest.json").read_text())
for name, expected in manifest["wheels"].items():
    path = bundle / name
    if not path.is_file():
        sys.exit(f"missing {path}: copy the whole bundle folder")
    if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        sys.exit(f"{path} does not match manifest.json: copy the bundle again")
here = f"{sys.version_info.major}.{sys.version_info.minor}"
if here != manifest["python_version"]:
    sys.exit(f"the bundle is for Python {manifest['python_version']}, this is {here}: make it with "
             f"'python -m benchmarks.gpu_bundle --python-version {here}'")
for name in manifest["provided_by_the_machine"]:
    try:
        __import__(name)
    except ImportError as error:
        sys.exit(f"{name} is not importable here ({error}); the machine must provide it")
from importlib import metadata
lacking, other = [], []
for name, version in manifest["left_out_as_present"].items():  # made with --have: what the machine had then
    try:
        if metadata.version(name) != version:
            other.append(f"{name} {metadata.version(name)} (not {version})")
    except metadata.PackageNotFoundError:
        lacking.append(f"{name} {version}")
if other:
    print(f"gpu_run: the bundle was made for other versions of what this machine has: {', '.join(other)}; "
          "pip checks them against mu-eval's requirements below")
if lacking:
    sys.exit(f"the bundle leaves out {', '.join(lacking)}, which this machine lacks: make it again with this "
             "machine's `pip list --format=freeze` as --have")
import torch
if not rehearsal and not torch.cuda.is_available():
    sys.exit("CUDA is not available to torch (MU_EVAL_REHEARSAL=1 rehearses on the CPU)")
EOF

WORK="$OUT/.gpu_run"
rm -rf "$WORK"
mkdir -p "$WORK/run" "$OUT/logs"
echo "gpu_run: installing the bundle into $WORK/venv"
"$PYTHON" -m venv --without-pip "$WORK/venv" 2>/dev/null || "$PYTHON" -m venv "$WORK/venv" \
  || fail "cannot create a virtual environment"
VENV_PY="$WORK/venv/bin/python"
# The new environment sees every package the machine has: a .pth file adds each of the machine's site
# directories as a site directory (their own .pth files included), whether they belong to the system's Python
# or to a virtual environment of its own (where `venv --system-site-packages` would reach the base Python's
# only). They come after the environment's own, so pip sees them installed, resolves against them and puts
# into the environment only what is missing or what mu-eval's requirements make it replace.
"$PYTHON" -c 'import os, site; dirs = site.getsitepackages() + [site.getusersitepackages()]
print("import site; list(map(site.addsitedir, %r))" % [d for d in dirs if os.path.isdir(d)])' \
  >"$("$VENV_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/machine-packages.pth" \
  || fail "cannot point the virtual environment at the machine's packages"
"$VENV_PY" -m pip --version >/dev/null 2>&1 || fail "no pip available to $VENV_PY (install python3-pip or python3-venv)"
# the bundle is the only source: no index, and no pip configuration or PIP_* variable can add one
PIP_CONFIG_FILE=/dev/null "$VENV_PY" -m pip --isolated install --no-index --find-links "$BUNDLE" mu-eval \
  >"$OUT/logs/install.log" 2>&1 \
  || { tail -20 "$OUT/logs/install.log" >&2
       fail "installing the bundle failed: something mu-eval needs is neither on this machine nor in the bundle, or is there at a version it cannot use (pip's message above; log: $OUT/logs/install.log)"; }
echo "gpu_run: $(grep '^Successfully installed' "$OUT/logs/install.log" || echo 'nothing installed')"

# run from a folder holding only benchmarks/, so that the checkout's mu_eval/ cannot shadow the installed one
cp -r "$HERE" "$WORK/run/benchmarks"
rm -rf "$WORK/run/benchmarks/gpu_bundle" "$WORK/run/benchmarks/results"
cd "$WORK/run"
"$VENV_PY" - "$WORK/venv" <<'EOF' || fail "mu_eval is not imported from the installed wheel (message above)"
import sys
from pathlib import Path
import mu_eval, benchmarks.common  # noqa: F401  (the benchmarks' imports: a missing dependency fails here)
if Path(sys.argv[1]).resolve() not in Path(mu_eval.__file__).resolve().parents:
    sys.exit(f"mu_eval comes from {mu_eval.__file__}, not from the bundle's installation")
print(f"gpu_run: mu_eval {mu_eval.__version__} from {Path(mu_eval.__file__).parent}")
EOF

if [ "$REHEARSAL" = "1" ]; then
  SIZE=(--toy --device cpu)
  LENGTH=()
else
  SIZE=(--no-toy --device cuda)
  LENGTH=(--max-new-tokens "$MAX_NEW")
fi
# cheapest first: a figure for every script that fits, and the overrun named
for script in bench_multiple_choice bench_scoring bench_generation bench_tofu_e2e; do
  left=$(( BUDGET - ($(date +%s) - START) ))
  [ "$left" -gt 10 ] || fail "the ${BUDGET}s budget ran out before $script (raise MU_EVAL_GPU_SECONDS)"
  extra=()
  case "$script" in bench_generation|bench_tofu_e2e) extra=("${LENGTH[@]}") ;; esac
  echo "gpu_run: $script (${left}s left)"
  set +e
  timeout "$left" "$VENV_PY" -m "benchmarks.$script" "${SIZE[@]}" ${extra[@]+"${extra[@]}"} --repeats 3 \
    --baseline-batch-size 32 256 --output "$OUT/$script.json" >"$OUT/logs/$script.log" 2>&1
  status=$?
  set -e
  if [ "$status" -eq 124 ]; then fail "$script ran past the ${BUDGET}s budget (log: $OUT/logs/$script.log)"; fi
  if [ "$status" -ne 0 ]; then
    tail -20 "$OUT/logs/$script.log" >&2
    fail "$script failed with status $status (1: the paths disagree; log: $OUT/logs/$script.log)"
  fi
done

set +e
"$VENV_PY" -m benchmarks.results_table --results-dir "$OUT" >"$OUT/results_table.md" 2>"$OUT/logs/results_table.log"
status=$?
set -e
cat "$OUT/results_table.md"
if [ "$REHEARSAL" = "1" ]; then
  # toy files must be refused, and for nothing else
  grep -q "toy-size run" "$OUT/logs/results_table.log" || fail "results_table did not refuse the toy files"
  if grep -v "toy-size run" "$OUT/logs/results_table.log" | grep -q .; then
    cat "$OUT/logs/results_table.log" >&2; fail "results_table found problems besides the toy sizes"
  fi
elif [ "$status" -ne 0 ]; then
  cat "$OUT/logs/results_table.log" >&2
  fail "results_table refused the files (above)"
fi
rm -rf "$WORK"
echo "gpu_run: done in $(( $(date +%s) - START ))s; JSON files, logs and results_table.md in $OUT"
