"""Map a measured Profile to a GPU class, and judge a claimed class against a Profile.

A claim for class K passes when all of these hold (a reason naming the figure otherwise):
- the primary matmul figure (bf16; fp32 for classes without bf16 and always for the CPU floor)
  is >= 70% of K's dense peak. REFERENCES measured best cases: H100 SXM 80%, A100 SXM 86%,
  A100 PCIe 82% of peak; 70% leaves room for power caps and clocks, not for a smaller GPU;
- the bf16/fp32 ratio is within a factor `RATIO_BAND` of K's (~15x H100, ~16x A100, ~4x
  A10/L4, ~2x RTX 3090/4090): it survives power caps and clocks, so it tells architectures
  apart even when absolute figures are scaled;
- copy bandwidth >= 70% of K's spec (a device-to-device copy reaches ~90% on H100-class cards);
- the bandwidth/compute ratio (GB/s per primary TFLOPS) is within a factor `BW_RATIO_BAND` of
  K's, adjusted for the efficiencies each figure reaches: like bf16/fp32 it survives clocks and
  power caps (both scale together), and it catches a profile whose two figures come from
  different hardware (one of them fabricated, or a bigger GPU's memory with a smaller one's
  compute) even when each alone would only be flagged;
- total memory >= 90% of K's VRAM (drivers report a few % less than the marketing figure);
- the fp32 path has true fp32 error (a "fp32" figure that is really TF32 is not trusted).
The CPU floor row is judged at 100% of its figures, with no ratio and no upper flag.

A figure above 105% of K's peak (matmul or bandwidth) passes but is flagged `suspicious`: the
device is a bigger class than claimed, or the figure is fabricated. A mismatching PCI id is
flagged too (ids are self-reported and vary across SKUs, so never a failure on their own).

Thresholds are module constants so the oracle and the docs quote one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from offchain.benchmark.gpu_classes import GPU_CLASS_TABLE, GpuClass, get_class
from offchain.benchmark.profile import Profile

# A claim needs >= 70% of the class's dense peak (matmul and bandwidth).
MIN_FRACTION = 0.70
# Above 105% of the class's peak is flagged suspicious.
SUSPICIOUS_FRACTION = 1.05
# Measured bf16/fp32 must lie in [class ratio / 2, class ratio * 2]: wide because fp32 SGEMM
# reaches a smaller share of peak than tensor-core bf16 on some cards (GeForce dual-issue fp32),
# narrow enough to tell the ~2x, ~4x and ~15x families apart.
RATIO_BAND = 2.0
# Measured (GB/s) / (primary TFLOPS) must lie within this factor of the class's spec ratio times
# _EXPECTED_COPY_EFF / _EXPECTED_MATMUL_EFF. The absolute checks alone bound it to ~[0.67, 1.5]
# of that while both figures are under 105% of spec; this catches figures far above it.
BW_RATIO_BAND = 2.0
# Total memory must be >= 90% of the class's VRAM (an "80 GB" H100 reports 79.6 GiB, a "16 GB" T4 15 GiB).
VRAM_MIN_FRACTION = 0.90
# fp32 error above this means the fp32 path ran TF32/bf16 (TF32 ~3e-4, true fp32 ~1e-7 at n=256).
FP32_MAX_REL_ERROR = 1e-4
# Expected efficiencies, used only to rank classes for best_match (REFERENCES measured best cases).
_EXPECTED_MATMUL_EFF = 0.8
_EXPECTED_COPY_EFF = 0.9


@dataclass(frozen=True)
class ClaimResult:
    passed: bool
    # Why it failed, then what is suspicious; empty when the claim is clean.
    reasons: list[str] = field(default_factory=list)
    best_match: GpuClass | None = None
    suspicious: bool = False
    claimed: GpuClass | None = None


@dataclass(frozen=True)
class _Assessment:
    failures: list[str]
    flags: list[str]
    distance: float


def _min_fraction(cls: GpuClass) -> float:
    return 1.0 if cls.is_floor else MIN_FRACTION


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _assess(profile: Profile, cls: GpuClass) -> _Assessment:
    failures: list[str] = []
    flags: list[str] = []
    distance = 0.0
    need = _min_fraction(cls)
    pct = f"{need:.0%}"

    if profile.device_type != "cuda" and not cls.is_floor:
        failures.append(f"measured on {profile.device_type} ({profile.name}); {cls.name} is a GPU class")

    dtype = cls.primary_dtype
    spec = cls.tflops(dtype)
    measured = profile.tflops.get(dtype)
    if measured is None:
        failures.append(f"no {dtype} matmul figure measured; {cls.name} is judged by {dtype}")
        distance += 10.0
    else:
        if measured < need * spec:
            failures.append(
                f"{dtype} matmul measured {_fmt(measured)} TFLOPS, below {pct} of {cls.name}'s "
                f"{spec:g} TFLOPS dense spec (needs >= {_fmt(need * spec)})"
            )
        elif not cls.is_floor and measured > SUSPICIOUS_FRACTION * spec:
            flags.append(
                f"{dtype} matmul measured {_fmt(measured)} TFLOPS, above {SUSPICIOUS_FRACTION:.0%} of "
                f"{cls.name}'s {spec:g} TFLOPS dense spec: a bigger class or a fabricated figure"
            )
        distance += abs(math.log(max(measured, 1e-12) / (_EXPECTED_MATMUL_EFF * spec)))

    class_ratio = cls.bf16_fp32_ratio
    if class_ratio is not None:
        ratio = profile.bf16_fp32_ratio
        lo, hi = class_ratio / RATIO_BAND, class_ratio * RATIO_BAND
        if ratio is None:
            failures.append(f"no bf16/fp32 ratio (need both figures); {cls.name}'s is {class_ratio:.1f}x")
            distance += 10.0
        else:
            if not lo <= ratio <= hi:
                failures.append(
                    f"bf16/fp32 ratio measured {ratio:.1f}x, outside the {lo:.1f}x-{hi:.1f}x band "
                    f"around {cls.name}'s {class_ratio:.1f}x"
                )
            distance += abs(math.log(max(ratio, 1e-12) / class_ratio))

    bw = profile.bandwidth_gbs
    if bw < need * cls.bandwidth_gbs:
        failures.append(
            f"copy bandwidth measured {_fmt(bw)} GB/s, below {pct} of {cls.name}'s "
            f"{cls.bandwidth_gbs:g} GB/s (needs >= {_fmt(need * cls.bandwidth_gbs)})"
        )
    elif not cls.is_floor and bw > SUSPICIOUS_FRACTION * cls.bandwidth_gbs:
        flags.append(
            f"copy bandwidth measured {_fmt(bw)} GB/s, above {SUSPICIOUS_FRACTION:.0%} of "
            f"{cls.name}'s {cls.bandwidth_gbs:g} GB/s"
        )
    distance += abs(math.log(max(bw, 1e-12) / (_EXPECTED_COPY_EFF * cls.bandwidth_gbs)))

    if not cls.is_floor and measured is not None and measured > 0 and bw > 0:
        expected = (cls.bandwidth_gbs / spec) * (_EXPECTED_COPY_EFF / _EXPECTED_MATMUL_EFF)
        bw_ratio = bw / measured
        lo, hi = expected / BW_RATIO_BAND, expected * BW_RATIO_BAND
        if not lo <= bw_ratio <= hi:
            failures.append(
                f"bandwidth/compute ratio measured {bw_ratio:.2f} GB/s per {dtype} TFLOPS, outside the "
                f"{lo:.2f}-{hi:.2f} band around {cls.name}'s {expected:.2f}: the figures do not come from one "
                "device of that class"
            )
        distance += abs(math.log(bw_ratio / expected))

    mem_need = (1.0 if cls.is_floor else VRAM_MIN_FRACTION) * cls.vram_bytes
    if profile.memory_total_bytes < mem_need:
        failures.append(
            f"memory {profile.memory_total_bytes / 2**30:.1f} GiB, below {cls.name}'s "
            f"{cls.vram_gib:g} GiB (needs >= {mem_need / 2**30:.1f} GiB)"
        )

    err = profile.fp32_rel_error
    if err is not None and err > FP32_MAX_REL_ERROR:
        failures.append(
            f"fp32 matmul relative error {err:.1e} > {FP32_MAX_REL_ERROR:.0e}: the fp32 path is not "
            "true fp32 (TF32 or bf16), so its figure is not trusted"
        )

    if profile.pci_id and cls.pci_id and profile.pci_id.lower() != cls.pci_id:
        flags.append(f"PCI id {profile.pci_id} is not {cls.name}'s {cls.pci_id}")

    return _Assessment(failures, flags, distance)


def best_match(profile: Profile) -> GpuClass | None:
    """The class this profile fits best, or None if it does not meet even the CPU floor.

    Among the GPU classes whose claim would pass, unflagged ones first, then the one whose
    figures are closest (log distance) to the class's expected real-world figures. The CPU
    floor matches only when no GPU class passes.
    """
    scored = []
    for cls in GPU_CLASS_TABLE:
        if cls.is_floor:
            continue
        a = _assess(profile, cls)
        if not a.failures:
            scored.append((bool(a.flags), a.distance, cls.class_id, cls))
    if scored:
        return min(scored)[3]
    for cls in GPU_CLASS_TABLE:
        if cls.is_floor and not _assess(profile, cls).failures:
            return cls
    return None


def check_claim(profile: Profile, claimed_class_id: int | str | GpuClass) -> ClaimResult:
    """Judge a claimed class against a measured profile; reasons name each figure that decided it."""
    cls = get_class(claimed_class_id)
    a = _assess(profile, cls)
    return ClaimResult(
        passed=not a.failures,
        reasons=a.failures + a.flags,
        best_match=best_match(profile),
        suspicious=bool(a.flags),
        claimed=cls,
    )
