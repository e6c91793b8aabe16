"""Measure a device: matmul TFLOPS per dtype, copy bandwidth, memory, and identity facts.

`measure()` picks CUDA when torch sees a GPU, else the CPU. What it does, per device type:

- matmul: `torch.mm(A, B, out=C)` on n x n matrices, 2 n^3 FLOP a product. `choose_size` climbs
  the candidate sizes from the smallest, timing one product at each (after a warm-up), and stops
  before one that would take over `max_product_s` (n^3 prediction, or timed). The figure is the
  median of `repeats` samples of ~`target_s` of back-to-back products at the largest size that
  fits (CUDA: best of all that fit); a smallest size already over budget is timed once. So a slow
  dtype (bf16 on a CPU without native bf16, ~1 GFLOPS) costs about a second, at a small n, with
  a note. CUDA: fp32 (TF32 off), tf32 (TF32 on, via `torch.backends.cuda.matmul.allow_tf32`),
  bf16 (compute capability >= 8.0), fp16; n 4096, 8192; CUDA events. CPU: fp32 and bf16; n 256
  to 2048; `time.perf_counter`. Defaults keep a 2-core CPU run to a few seconds.
- bandwidth: `dst.copy_(src)` of a large tensor (CUDA: min(1 GiB, free/4); CPU: 256 MiB),
  bytes moved = 2 x size (read + write), samples of at most `COPY_TARGET_S`.
- memory: CUDA `torch.cuda.mem_get_info`; CPU `/proc/meminfo` (psutil is not a dependency).
- fp32 error signature: an fp32 product against float64, to tell true fp32 from TF32/bf16
  running under the fp32 name (REFERENCES: ~2e-3 vs ~4e-5 in PyTorch's own example).

These are self-measurements: useful for a provider to choose its class and for the CLI; an
oracle never trusts them for speed (it times the challenge in `challenge.py` on its own clock).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from offchain.benchmark.profile import Profile

TORCH_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# Candidate sizes: GPU sizes reach near-peak tensor-core throughput (8192^2 bf16 is ~80% of peak
# on H100, per REFERENCES); on a 2-core AVX-512 CPU n=2048 (~0.09 s an fp32 product) is within a
# few % of a plain loop's figure, and 4096 would cost ~2 s more for bf16 with no gain.
DEFAULT_SIZES = {"cuda": (4096, 8192), "cpu": (256, 512, 1024, 2048)}
DEFAULT_REPEATS = {"cuda": 5, "cpu": 3}
# Each timed sample lasts about this long (more back-to-back ops for fast devices); copies are
# steady, so their samples last at most COPY_TARGET_S (a 256 MiB CPU copy takes ~15 ms).
DEFAULT_TARGET_S = {"cuda": 0.05, "cpu": 0.2}
COPY_TARGET_S = 0.05
# The largest single product a chosen size may take: bounds a dtype's cost (~3 s at most on CPU).
DEFAULT_MAX_PRODUCT_S = {"cuda": 1.0, "cpu": 0.5}
# CPU bf16 below this fraction of fp32 gets a note: the CPU likely lacks native bf16 matmul.
SLOW_BF16_RATIO = 0.25
DEFAULT_BANDWIDTH_BYTES = {"cuda": 1 << 30, "cpu": 256 << 20}
MAX_ITERS_PER_SAMPLE = 1000
ERROR_PROBE_N = 256


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """None -> the current CUDA device if torch sees one, else the CPU; "cuda" -> "cuda:<current>"."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"benchmark: unsupported device {device!r} (cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("benchmark: CUDA device requested but torch sees no GPU")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    elif dev.type != "cpu":
        raise ValueError(f"benchmark: unsupported device {dev} (cuda or cpu)")
    return dev


@contextlib.contextmanager
def tf32_mode(enabled: bool) -> Iterator[None]:
    """Set CUDA matmul TF32 on or off for the block, restoring the previous setting.

    Uses `torch.backends.cuda.matmul.allow_tf32`; if the process already switched to the newer
    `fp32_precision` API (torch refuses to mix the two), uses that instead.
    """
    matmul = torch.backends.cuda.matmul
    try:
        before = matmul.allow_tf32
        matmul.allow_tf32 = enabled
        legacy = True
    except RuntimeError:
        before = matmul.fp32_precision
        matmul.fp32_precision = "tf32" if enabled else "ieee"
        legacy = False
    try:
        yield
    finally:
        if legacy:
            matmul.allow_tf32 = before
        else:
            matmul.fp32_precision = before


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed(fn: Callable[[], object], iters: int, dev: torch.device) -> float:
    """Seconds for `iters` back-to-back calls: CUDA events on GPU, perf_counter on CPU."""
    if dev.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return time.perf_counter() - t0


def time_op(
    fn: Callable[[], object], dev: torch.device, repeats: int, target_s: float, one: float | None = None
) -> float:
    """Median seconds per call of `fn` over `repeats` samples, after a warm-up and a calibration
    (both skipped when `one`, the seconds of one warm call, is already known)."""
    if one is None:
        fn()  # warm-up: kernel selection, allocator, page faults
        _sync(dev)
        one = _timed(fn, 1, dev)
    iters = max(1, min(MAX_ITERS_PER_SAMPLE, math.ceil(target_s / max(one, 1e-9))))
    samples = [_timed(fn, iters, dev) / iters for _ in range(max(1, repeats))]
    return statistics.median(samples)


def choose_size(sizes: Sequence[int], time_one: Callable[[int], float], budget_s: float) -> list[tuple[int, float]]:
    """Climb `sizes` from the smallest, timing one product at each with `time_one(n)` (seconds).

    Stops before a size whose product would take over `budget_s`: predicted from the last
    size by n^3 scaling (then not timed), or timed over it. Returns [(n, seconds)] of the sizes
    that fit, smallest first; the smallest size is always there, alone if already over budget.
    """
    ladder = sorted(set(sizes))
    fits = [(ladder[0], time_one(ladder[0]))]
    for n in ladder[1:]:
        last_n, last_t = fits[-1]
        if last_t * (n / last_n) ** 3 > budget_s or (t := time_one(n)) > budget_s:
            break
        fits.append((n, t))
    return fits


def matmul_budgeted(
    dtype: str, sizes: Sequence[int], dev: torch.device, repeats: int, target_s: float, max_product_s: float
) -> tuple[float, int, str | None]:
    """(TFLOPS, n, note) for `dtype` at the sizes `choose_size` allows (see the module docstring).

    The note says what the next larger size would cost, or that n was timed once; None at the top.
    """
    tdt, fns, cuda = TORCH_DTYPES[dtype], {}, dev.type == "cuda"

    def time_one(n: int) -> float:
        for m in sorted(fns)[:-1] if not cuda else ():
            del fns[m]  # CPU: keep only the largest size that fit so far
        # Random normal operands made on the device (values matter for power draw, not their seed).
        a, b = (torch.randn((n, n), device=dev).to(tdt) for _ in range(2))
        out = torch.empty((n, n), device=dev, dtype=tdt)
        fns[n] = fn = lambda: torch.mm(a, b, out=out)  # noqa: E731
        fn()  # warm-up: kernel selection, allocator, page faults
        _sync(dev)
        return max(_timed(fn, 1, dev), 1e-9)

    with tf32_mode(dtype == "tf32") if cuda else contextlib.nullcontext():
        fits = choose_size(sizes, time_one, max_product_s)
        n, one = fits[-1]
        if one > max_product_s:  # the smallest size is already over budget: that product is the figure
            note = f"{dtype} timed once at n={n}: took {one:.2g} s (budget {max_product_s:g} s)"
            return 2 * n**3 / one / 1e12, n, note
        # CUDA keeps the best of every size that fit (as ever); the CPU samples only the largest.
        runs = fits if cuda else fits[-1:]
        tflops, best_n = max((2 * m**3 / time_op(fns[m], dev, repeats, target_s, one=t) / 1e12, m) for m, t in runs)
    nxt = min((m for m in sizes if m > n), default=0)
    cost = f"n={nxt} would take ~{one * (nxt / n) ** 3:.2g} s a product (budget {max_product_s:g} s)"
    return tflops, best_n, f"{dtype} measured at n={best_n}: {cost}" if nxt else None


def copy_bandwidth_gbs(nbytes: int, dev: torch.device, repeats: int, target_s: float) -> float:
    """Device-to-device copy of `nbytes`, GB/s with bytes moved = 2 x nbytes (read + write)."""
    numel = max(1, nbytes // 4)
    src = torch.ones(numel, dtype=torch.float32, device=dev)
    dst = torch.empty_like(src)
    seconds = time_op(lambda: dst.copy_(src), dev, repeats, target_s)
    return 2 * numel * 4 / seconds / 1e9


def fp32_relative_error(dev: torch.device, n: int = ERROR_PROBE_N) -> float:
    """||C - C64||_F / ||C64||_F for an fp32 product with TF32 off, C64 computed in float64."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn((n, n), generator=g)
    b = torch.randn((n, n), generator=g)
    ref = a.double() @ b.double()
    ctx = tf32_mode(False) if dev.type == "cuda" else contextlib.nullcontext()
    with ctx:
        c = (a.to(dev) @ b.to(dev)).cpu().double()
    return float(torch.linalg.norm(c - ref) / torch.linalg.norm(ref))


def _read_meminfo() -> tuple[int, int]:
    """(MemTotal, MemAvailable) in bytes from /proc/meminfo; sysconf as a fallback."""
    try:
        vals = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                vals[key] = int(parts[0]) * 1024  # kB
        total = vals["MemTotal"]
        return total, vals.get("MemAvailable", vals.get("MemFree", total))
    except (OSError, KeyError, ValueError):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total, total


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _nvidia_driver() -> str | None:
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        text = ""
    for tok in text.split():
        if tok.count(".") >= 1 and tok.replace(".", "").isdigit():
            return tok
    try:
        import pynvml  # optional; comes with some CUDA setups

        pynvml.nvmlInit()
        v = pynvml.nvmlSystemGetDriverVersion()
        return v.decode() if isinstance(v, bytes) else str(v)
    except Exception:
        return None


def _pci_id(dev: torch.device) -> str | None:
    """vendor:device ("10de:2330") from sysfs at the GPU's bus address, else pynvml, else None."""
    props = torch.cuda.get_device_properties(dev)
    dom, bus, slot = (getattr(props, k, None) for k in ("pci_domain_id", "pci_bus_id", "pci_device_id"))
    if bus is not None and slot is not None:
        base = Path(f"/sys/bus/pci/devices/{dom or 0:04x}:{bus:02x}:{slot:02x}.0")
        try:
            vendor = int(base.joinpath("vendor").read_text(), 16)
            device = int(base.joinpath("device").read_text(), 16)
            return f"{vendor:04x}:{device:04x}"
        except (OSError, ValueError):
            pass
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(dev.index or 0)
        word = pynvml.nvmlDeviceGetPciInfo(handle).pciDeviceId  # 0xDDDDVVVV
        return f"{word & 0xFFFF:04x}:{word >> 16:04x}"
    except Exception:
        return None


def measure(
    device: str | torch.device | None = None,
    sizes: Sequence[int] | None = None,
    repeats: int | None = None,
    *,
    dtypes: Sequence[str] | None = None,
    bandwidth_bytes: int | None = None,
    target_s: float | None = None,
    max_product_s: float | None = None,
) -> Profile:
    """Measure `device` (default: CUDA if present, else CPU) and return its Profile.

    sizes: candidate matrix sizes n (default 4096, 8192 on CUDA; 256 to 2048 on CPU), climbed
    under `max_product_s` seconds a product (default 1 CUDA / 0.5 CPU, see `choose_size`).
    repeats: timed samples per figure, median taken (default 5 CUDA / 3 CPU); target_s: seconds
    a sample lasts (default 0.05 CUDA / 0.2 CPU). dtypes: restrict to these (default: all the
    device supports, see the module docstring).
    """
    t_start = time.perf_counter()
    dev = resolve_device(device)
    kind = dev.type
    sizes = tuple(sizes or DEFAULT_SIZES[kind])
    repeats = repeats or DEFAULT_REPEATS[kind]
    target_s = DEFAULT_TARGET_S[kind] if target_s is None else target_s
    max_product_s = DEFAULT_MAX_PRODUCT_S[kind] if max_product_s is None else max_product_s
    notes: list[str] = []

    if kind == "cuda":
        name = torch.cuda.get_device_name(dev)
        capability = tuple(torch.cuda.get_device_capability(dev))
        free, total = torch.cuda.mem_get_info(dev)
        supported = ["fp32", "tf32", "fp16"]
        if capability >= (8, 0):
            supported.insert(2, "bf16")
        else:
            notes.append(
                f"bf16 skipped: compute capability {capability[0]}.{capability[1]} < 8.0 (no bf16 tensor cores)"
            )
        pci_id = _pci_id(dev)
        driver = _nvidia_driver()
        cuda_version = torch.version.cuda
        copy_bytes = bandwidth_bytes or min(DEFAULT_BANDWIDTH_BYTES["cuda"], free // 4)
    else:
        name = _cpu_name()
        capability = None
        total, free = _read_meminfo()
        supported = ["fp32", "bf16"]
        pci_id = driver = cuda_version = None
        copy_bytes = bandwidth_bytes or DEFAULT_BANDWIDTH_BYTES["cpu"]
        notes.append(
            f"cpu: {torch.get_num_threads()} torch threads, capability {torch.backends.cpu.get_cpu_capability()}"
        )

    wanted = [d for d in supported if dtypes is None or d in dtypes]
    for d in dtypes or ():
        if d not in supported:
            notes.append(f"{d} skipped: not measured on {kind}")

    tflops: dict[str, float] = {}
    matmul_n: dict[str, int] = {}
    size_notes: dict[str, str | None] = {}
    for d in wanted:
        tflops[d], matmul_n[d], size_notes[d] = matmul_budgeted(d, sizes, dev, repeats, target_s, max_product_s)
    fp32 = tflops.get("fp32")
    for d, note in size_notes.items():  # a slow CPU bf16; a dtype below another's n, or timed once
        if kind == "cpu" and d == "bf16" and fp32 and tflops[d] < SLOW_BF16_RATIO * fp32:
            head = note or f"bf16 measured at n={matmul_n[d]}"
            notes.append(f"{head}: {tflops[d] / fp32:.2g}x fp32, likely no native bf16 matmul on this CPU")
        elif note and ("timed once" in note or matmul_n[d] < max(matmul_n.values())):
            notes.append(note)
    bandwidth = copy_bandwidth_gbs(copy_bytes, dev, repeats, min(target_s, COPY_TARGET_S))
    rel_err = fp32_relative_error(dev)
    if kind == "cuda":
        torch.cuda.empty_cache()

    return Profile(
        device_type=kind,
        device=str(dev),
        name=name,
        tflops=tflops,
        bandwidth_gbs=bandwidth,
        memory_total_bytes=int(total),
        memory_free_bytes=int(free),
        fp32_rel_error=rel_err,
        capability=capability,
        pci_id=pci_id,
        driver=driver,
        torch_version=torch.__version__,
        cuda_version=cuda_version,
        platform=platform.platform(),
        cpu_count=_cpu_count(),
        matmul_n=matmul_n,
        bandwidth_bytes=int(copy_bytes) // 4 * 4,
        elapsed_s=time.perf_counter() - t_start,
        notes=tuple(notes),
    )
