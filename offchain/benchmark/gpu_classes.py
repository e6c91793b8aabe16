"""The reference table of GPU classes: dense peak figures per dtype, memory, and their sources.

Every figure is a vendor's dense (no sparsity) peak or a datasheet summary, copied from
`shared/REFERENCES.md` ("GPU classes"), which names its source and confidence per row. Peaks
are what the silicon can do at boost clock; real matmuls reach ~80-86% of them on datacenter
cards (H100 SXM bf16 792 of 989, A100 SXM 268 of 312) and a device-to-device copy ~90% of the
bandwidth, which is why `classify` accepts >= 70% and flags > 105%.

Class ids match `offchain/params.py` `GPU_CLASSES` (the on-chain class ids).

Units: TFLOPS = 1e12 FLOP/s (one multiply-add = 2 FLOP); bandwidth in GB/s = 1e9 B/s; VRAM in
GiB, because the "80 GB" of an 80 GB card is what the driver reports as ~80 GiB (H100 SXM:
81,559 MiB; A100 80GB: 81,920 MiB; T4 "16 GB": 15,360 MiB).

The CPU row (class 1) is **not a spec**: it is a floor that lets the whole flow (attestation,
jobs, audits) run on machines without a GPU, e.g. the demo and CI. It is set low enough that a
shared 2-core CI VM passes while other work runs on it (measured there under load:
~0.047 TFLOPS fp32 at n=1024, ~4.4 GB/s copy), and `classify` treats it as a minimum (100% of
the figure, no upper flag, no bf16/fp32 ratio).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from offchain.params import GPU_CLASSES

DTYPES = ("fp32", "tf32", "bf16", "fp16")

# Where the PCI vendor:device ids come from. REFERENCES.md states 10de:2330 (H100 SXM) and
# 10de:2684 (RTX 4090); the rest are the PCI ID Repository's entries
# (https://pci-ids.ucw.cz/v2.2/pci.ids), e.g. "2236  GA102GL [A10]", as quoted verbatim in
# public code and docs. A device id is informative only: boards and SKUs share or vary them,
# and a provider can report any id it likes, so a mismatch is flagged, never failed.
PCI_ID_SOURCE = "REFERENCES.md (2330, 2684); PCI ID Repository pci-ids.ucw.cz (others)"

_NVIDIA = "NVIDIA datasheet (REFERENCES.md)"
_SUMMARY = "datasheet summary (REFERENCES.md)"
_SECONDARY = "secondary sources (REFERENCES.md)"


@dataclass(frozen=True)
class GpuClass:
    class_id: int
    name: str
    # Dense peak TFLOPS per dtype; None where the class has no such tensor path.
    fp32_tflops: float
    tf32_tflops: float | None
    bf16_tflops: float | None
    fp16_tflops: float | None
    bandwidth_gbs: float
    vram_gib: float
    # "10de:2330"-style vendor:device id, None where not known.
    pci_id: str | None
    source: str
    # True only for the CPU row: its figures are minimums, not peaks.
    is_floor: bool = False

    def tflops(self, dtype: str) -> float | None:
        """Dense peak for `dtype` ("fp32", "tf32", "bf16", "fp16"), None if unsupported."""
        if dtype not in DTYPES:
            raise ValueError(f"gpu_classes: unknown dtype {dtype!r} (one of {', '.join(DTYPES)})")
        return getattr(self, f"{dtype}_tflops")

    @property
    def primary_dtype(self) -> str:
        """The dtype a claim is judged by: bf16 where the class has it, else fp32 (always fp32 for CPU)."""
        if self.is_floor or self.bf16_tflops is None:
            return "fp32"
        return "bf16"

    @property
    def bf16_fp32_ratio(self) -> float | None:
        """Clock-independent architecture signature: dense bf16 / fp32 peak (None without bf16)."""
        if self.bf16_tflops is None or self.is_floor:
            return None
        return self.bf16_tflops / self.fp32_tflops

    @property
    def vram_bytes(self) -> int:
        return int(self.vram_gib * 2**30)

    def to_dict(self) -> dict:
        return asdict(self)


GPU_CLASS_TABLE: tuple[GpuClass, ...] = (
    GpuClass(
        1,
        "CPU",
        fp32_tflops=0.01,
        tf32_tflops=None,
        bf16_tflops=None,
        fp16_tflops=None,
        bandwidth_gbs=1.0,
        vram_gib=2.0,
        pci_id=None,
        source="gpunet floor, not a spec: lets the flow run without GPUs (see module docstring)",
        is_floor=True,
    ),
    # T4: no bf16 tensor path (Turing); fp16 65 TFLOPS on tensor cores. Judged by fp32.
    GpuClass(2, "T4", 8.1, None, None, 65.0, 320.0, 16.0, "10de:1eb8", _SECONDARY),
    GpuClass(3, "L4", 30.3, 60.0, 121.0, 121.0, 300.0, 24.0, "10de:27b8", _SECONDARY),
    GpuClass(4, "A10", 31.2, 62.5, 125.0, 125.0, 600.0, 24.0, "10de:2236", _SECONDARY),
    # GeForce cards: bf16/fp16 with fp32 accumulation (what torch's matmul uses); fp16 with
    # fp16 accumulation is 2x (142 / 330.3) but torch does not use it.
    GpuClass(5, "RTX 3090", 35.6, 35.6, 71.0, 71.0, 936.0, 24.0, "10de:2204", _SECONDARY),
    GpuClass(6, "RTX 4090", 82.6, 82.6, 165.2, 165.2, 1008.0, 24.0, "10de:2684", _SECONDARY),
    GpuClass(
        7,
        "A100 PCIe 80GB",
        19.5,
        156.0,
        312.0,
        312.0,
        1935.0,
        80.0,
        "10de:20b5",
        _SUMMARY + "; 40 GB variant 1,555 GB/s",
    ),
    GpuClass(8, "A100 SXM4 80GB", 19.5, 156.0, 312.0, 312.0, 2039.0, 80.0, "10de:20b2", _NVIDIA),
    GpuClass(9, "H100 PCIe", 51.0, 378.0, 756.0, 756.0, 2000.0, 80.0, "10de:2331", _NVIDIA),
    GpuClass(10, "H100 SXM5", 67.0, 494.7, 989.0, 989.0, 3350.0, 80.0, "10de:2330", _NVIDIA),
    GpuClass(11, "H200 SXM", 67.0, 494.5, 989.0, 989.0, 4800.0, 141.0, "10de:2335", _SUMMARY),
)

CLASS_BY_ID: dict[int, GpuClass] = {c.class_id: c for c in GPU_CLASS_TABLE}
CLASS_BY_NAME: dict[str, GpuClass] = {c.name: c for c in GPU_CLASS_TABLE}

# The table must cover exactly the on-chain class ids, with the same names.
if {c.class_id: c.name for c in GPU_CLASSES} != {c.class_id: c.name for c in GPU_CLASS_TABLE}:
    raise RuntimeError("gpu_classes: table out of sync with offchain/params.py GPU_CLASSES")


def get_class(claimed: int | str | GpuClass) -> GpuClass:
    """Look a class up by id, name (case-insensitive) or pass one through."""
    if isinstance(claimed, GpuClass):
        return claimed
    if isinstance(claimed, int):
        if claimed not in CLASS_BY_ID:
            raise KeyError(f"gpu_classes: no class id {claimed} (ids {min(CLASS_BY_ID)}..{max(CLASS_BY_ID)})")
        return CLASS_BY_ID[claimed]
    text = str(claimed).strip()
    if text.isdigit():
        return get_class(int(text))
    for c in GPU_CLASS_TABLE:
        if c.name.lower() == text.lower():
            return c
    raise KeyError(f"gpu_classes: no class named {claimed!r} (known: {', '.join(CLASS_BY_NAME)})")
