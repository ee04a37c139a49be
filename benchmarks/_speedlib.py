"""Shared helpers of the speed benchmarks (``benchmarks/speed_*.py``).

- :func:`machine_info`: CPU model, cores, bf16 support, torch version, threads, load, date.
- :func:`run_worker`: run one configuration in a fresh Python process (so its peak memory,
  ``VmHWM``, is its own) and return the JSON dict it prints last.
- :func:`write_section`: replace this benchmark's own marked section of
  ``docs/benchmarks.md`` (other sections, written by other benchmarks, are left alone).
- :func:`isbi_mosaic`: a large real image tiled from the ISBI 2012 slices.

Nothing here imports torch at module level: the parent process of a benchmark stays light
and each worker sets its thread count before torch starts its thread pools.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SHARED_DATA = ROOT.parent / "shared" / "data"
ISBI = SHARED_DATA / "isbi2012_membrane"
DOC_HEADER = (
    "# Benchmarks\n\n"
    "Figures written by the scripts in `benchmarks/` (see `benchmarks/README.md`). Each "
    "section is replaced as a whole by the script that owns it; the machine it ran on is "
    "stated in the section.\n"
)


# ------------------------------------------------------------------------------ machine
def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def machine_info(device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """What a figure needs next to it: the machine, the software, the load while it ran."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "bf16_hw": ",".join(sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile"}))
        or "none",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": device,
        "threads": threads if threads is not None else torch.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError):
        info["monai"] = metadata.version("monai")  # without importing it (300 MB, seconds)
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One Markdown paragraph describing the machine of a run."""
    parts = [
        f"CPU: {info['cpu']}, {info['cores']} cores (bf16 hardware: {info['bf16_hw']}, "
        f"torch capability {info['cpu_capability']})",
        f"torch {info['torch']}" + (f", MONAI {info['monai']}" if "monai" in info else ""),
        f"device {info['device']}" + (f" ({info['gpu']})" if "gpu" in info else ""),
        f"{info['threads']} torch thread(s)",
        f"load average at start {info['load_avg_1min']}",
        info["date"],
    ]
    return "; ".join(parts) + "."


def set_threads(threads: int | None) -> int:
    """Fix torch's intra-op threads (call before any torch work); returns the count used."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def thread_env(threads: int | None) -> dict[str, str]:
    """Environment for a worker: OpenMP/MKL pools sized like torch's, so nothing
    oversubscribes the cores."""
    env = dict(os.environ)
    if threads:
        for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[key] = str(threads)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ------------------------------------------------------------------------------ memory
def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this process's own
    address space. (``ru_maxrss`` is not used there: across fork/vfork + exec the kernel
    carries the *parent's* peak into the child's ``ru_maxrss``, so a worker started by a
    big parent would report the parent's peak.) Elsewhere ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes / KiB


def rss_mb() -> float:
    """Current resident memory of this process, in MB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_worker(
    script: Path, config: dict[str, Any], threads: int | None, timeout: float = 3600
) -> dict[str, Any]:
    """Run ``python script --worker JSON`` in a fresh process; return the dict it printed
    as its last stdout line, or ``{"error": ...}`` if it failed (out of memory, crash)."""
    cmd = [sys.executable, str(script), "--worker", json.dumps(config)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=thread_env(threads), timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


def worker_main(handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> bool:
    """If this process was started by :func:`run_worker`, run the named handler, print its
    result (plus peak memory) as JSON and return True."""
    if len(sys.argv) < 3 or sys.argv[1] != "--worker":
        return False
    config = json.loads(sys.argv[2])
    set_threads(config.get("threads"))
    result = handlers[config["kind"]](config)
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    print(json.dumps(result), flush=True)
    return True


# ------------------------------------------------------------------------------ timing
def timed(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn`` over ``repeats`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


# ------------------------------------------------------------------------------ data
def isbi_mosaic(size: int, data: Path = ISBI) -> np.ndarray:
    """A (size, size) uint8 image tiled from the 512x512 ISBI 2012 slices (real EM data),
    slice i at mosaic cell i mod 20, each cell flipped so neighbours meet without a seam
    that would look like a membrane."""
    import imageio.v3 as iio

    if not data.is_dir():
        raise SystemExit(f"ISBI data not found at {data} (expected ../shared/data)")
    slices = [np.asarray(iio.imread(data / "images" / f"{i}.png")) for i in range(20)]
    side = slices[0].shape[0]
    n = -(-size // side)
    out = np.empty((n * side, n * side), np.uint8)
    for r in range(n):
        for c in range(n):
            tile = slices[(r * n + c) % len(slices)]
            if r % 2:
                tile = tile[::-1]
            if c % 2:
                tile = tile[:, ::-1]
            out[r * side : (r + 1) * side, c * side : (c + 1) * side] = tile
    return np.ascontiguousarray(out[:size, :size])


def isbi_training_sample(index: int = 0, instances: bool = False, normalization: Any = None):
    """ISBI slice ``index`` as a :class:`~napari_unet.unet.data.TrainingSample`: fully
    annotated membrane (1) / cell (2), or instance mode (cells = connected interiors) with
    the weight map."""
    import imageio.v3 as iio
    from scipy import ndimage

    from napari_unet import prepare_sample

    image = np.asarray(iio.imread(ISBI / "images" / f"{index}.png"))
    interior = np.asarray(iio.imread(ISBI / "labels" / f"{index}.png")) > 127
    if instances:
        labels, _ = ndimage.label(interior)
        return prepare_sample(
            image, labels, mode="instances", normalization=normalization, use_weight_map=True
        )
    labels = np.where(interior, 2, 1).astype(np.uint8)
    return prepare_sample(
        image, labels, mode="scribbles", normalization=normalization, use_weight_map=False
    )


def small_unet(base: int, depth: int = 4, padding: str = "valid", seed: int = 0):
    """The widget's presets: depth 4, valid convolutions, batch norm, no dropout; base 16
    is the "small" preset. Seeded, so every worker builds the same weights."""
    import torch

    from napari_unet import UNet

    torch.manual_seed(seed)
    model = UNet(
        in_channels=1,
        n_classes=2,
        depth=depth,
        base_channels=base,
        padding=padding,
        batch_norm=True,
        dropout=0.0,
    )
    return model.eval()


# ------------------------------------------------------------------------------ report
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    # the lock lives outside the repository, so no stray file is left next to the document
    with open(Path(tempfile.gettempdir()) / "napari-unet-benchmarks-md.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def add_output_options(parser: Any) -> None:
    """--json / --no-doc / --from-json, shared by every benchmark script."""
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--no-doc", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--from-json", help="only rewrite the section from a --json file")


def rewrite_from_json(
    args: Any, name: str, report: Callable[[dict[str, Any]], str], prefix: str = "speed:"
) -> bool:
    """With --from-json: rewrite section ``name`` from saved results; True if it did."""
    if not args.from_json:
        return False
    print(f"wrote {write_section(name, report(load_json(args.from_json)), prefix=prefix)}")
    return True


def write_section(name: str, body: str, doc: Path = DOC, prefix: str = "speed:") -> Path:
    """Put ``body`` between ``<!-- speed:NAME start -->`` and ``<!-- speed:NAME end -->``
    (``prefix`` + NAME) in ``doc`` (appended if the markers are absent); nothing else in
    the file changes."""
    start, end = f"<!-- {prefix}{name} start -->", f"<!-- {prefix}{name} end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    with _locked(doc):
        text = doc.read_text(encoding="utf-8") if doc.exists() else DOC_HEADER
        i, j = text.find(start), text.find(end)
        if i >= 0 and j > i:
            text = text[:i] + block + text[j + len(end) :]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=".benchmarks-", suffix=".md")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, doc)
    return doc


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def quick_banner(quick: bool) -> str:
    return (
        "**Smoke-test numbers (`--quick`: small images, few repetitions, 1 thread, on a "
        "shared and contended CPU). Not representative: rerun without `--quick` on a quiet "
        "machine.**\n\n"
        if quick
        else ""
    )


def load_json(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2), encoding="utf-8")


def goal(label: str, value: str, met: bool | None) -> str:
    """One line of a section's goal check: '- label: value (met / NOT met)'."""
    verdict = "" if met is None else (" - **met**" if met else " - **NOT met**")
    return f"- {label}: {value}{verdict}"
