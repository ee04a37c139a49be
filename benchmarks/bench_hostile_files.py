"""How fast, and with how much memory, hostile model files and packages are refused.

    python benchmarks/bench_hostile_files.py            # every case, 3 runs each
    python benchmarks/bench_hostile_files.py --runs 1   # one run each

The hostile files are generated (the builders of ``tests/test_hostile_files.py``, which
asserts the same goals: refused within 2 s, peak memory growing by less than 300 MB): a
model file declaring 4096 base channels, a model file whose largest tensor is a deflated
1 GiB member, a bioimage.io package with a 1.5 KB YAML alias bomb in its rdf.yaml, a
package declaring 4096 base channels, and packages whose weights or test input are 1 GiB
zip bombs. Each load runs in a fresh process that imports napari-unet (and
``bioimageio.spec`` for packages) first, then measures the load alone: wall time, and the
growth of its peak resident memory (``VmHWM``; ``ru_maxrss`` elsewhere). The slowest run
and the largest growth of the runs are reported.

The peer, in the same run: the libraries napari-unet reads these files with, called on
their own (``torch.load(weights_only=True)`` for model files, bioimageio.spec's
``load_description`` for packages), in a fresh process capped at 20 s and 6 GB of address
space.

Prints a Markdown table with the machine; ``--json FILE`` keeps the raw figures. Nothing is
written to docs/ (the table is pasted there by hand).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_hostile_files import (  # noqa: E402
    HOSTILE_CASES,
    MAX_RSS_GROWTH_MB,
    MAX_SECONDS,
    build_package,
    measure_load,
)

PEER = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))
def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
kind, path = sys.argv[1], sys.argv[2]
if kind == "package":
    import bioimageio.spec as spec
    load = lambda p: spec.load_description(p, perform_io_checks=False)
else:
    import torch
    load = lambda p: torch.load(p, map_location="cpu", weights_only=True)
before = peak_mb()
t0 = time.perf_counter()
try:
    out = load(path)
    error = None if type(out).__name__ != "InvalidDescr" else "InvalidDescr"
except BaseException as err:
    error = type(err).__name__
print(json.dumps({"seconds": time.perf_counter() - t0, "rss_growth_mb": peak_mb() - before,
                  "error": error}), flush=True)
"""
PEER_TIMEOUT = 20


def measure_peer(kind: str, path: Path) -> str:
    """What the reading library alone does with the file: time, memory, outcome."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", PEER, kind, str(path)],
            capture_output=True, text=True, timeout=PEER_TIMEOUT, cwd=path.parent,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"still running after {PEER_TIMEOUT} s (stopped)"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return f"died (exit status {proc.returncode})"
    r = json.loads(lines[-1])
    outcome = "loaded" if r["error"] is None else r["error"]
    return f"{r['seconds']:.2f} s, +{r['rss_growth_mb']:.0f} MB, {outcome}"


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.platform()}; CPU: {cpu}, {os.cpu_count()} cores; Python "
        f"{platform.python_version()}, torch {torch.__version__}; load average at start "
        f"{os.getloadavg()[0]:.2f}; {_dt.datetime.now():%Y-%m-%d %H:%M}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per case")
    parser.add_argument("--json", help="also write the raw figures to this file")
    args = parser.parse_args()
    header = machine()
    rows, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        folder = Path(tmp)
        package = None
        for case, (build, kind, _reason) in HOSTILE_CASES.items():
            if kind == "package" and package is None:
                package = build_package(folder)
            path = build(folder, package)
            results = [measure_load(kind, path) for _ in range(args.runs)]
            peer = measure_peer(kind, path)
            raw[case] = results
            seconds = max(r["seconds"] for r in results)
            growth = max(r["rss_growth_mb"] for r in results)
            message = results[0]["message"] or "(loaded!)"
            met = (
                all(r["error"] for r in results)
                and seconds < MAX_SECONDS
                and growth < MAX_RSS_GROWTH_MB
            )
            short = message if len(message) <= 160 else message[:157] + "..."
            rows.append(
                f"| {case} | {seconds:.3f} | {growth:.1f} | {'yes' if met else 'NO'} | "
                f"{peer} | {short.replace('|', '/')} |"
            )
            print(f"{case}: {seconds:.3f} s, +{growth:.1f} MB", file=sys.stderr)
    print(f"Hostile files, {args.runs} fresh process(es) per case (slowest / largest kept). "
          f"Machine: {header}\n")  # fmt: skip
    print(
        f"| case | refused in (s) | peak RSS growth (MB) | within {MAX_SECONDS:g} s and "
        f"{MAX_RSS_GROWTH_MB:g} MB | peer: torch.load / bioimageio.spec alone | message |"
    )
    print("|---|---:|---:|---|---|---|")
    print("\n".join(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": header, "cases": raw}, indent=2))


if __name__ == "__main__":
    main()
