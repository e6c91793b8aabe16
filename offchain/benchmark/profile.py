"""A measured hardware profile: what `measure()` returns and `classify` judges.

Plain data (no torch import), so the oracle can rebuild one from JSON and classify it, and tests
can build synthetic ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class Profile:
    # "cuda" or "cpu" (torch device type) and the device string measured, e.g. "cuda:0".
    device_type: str
    device: str
    # torch.cuda.get_device_name, or the CPU model name.
    name: str
    # Measured dense matmul throughput per dtype ("fp32", "tf32", "bf16", "fp16"), TFLOPS;
    # a dtype that was not measured is absent.
    tflops: dict[str, float]
    # Device-to-device copy of a large tensor, GB/s, counting bytes read + bytes written.
    bandwidth_gbs: float
    # CUDA: torch.cuda.mem_get_info (total, free); CPU: /proc/meminfo (MemTotal, MemAvailable).
    memory_total_bytes: int
    memory_free_bytes: int
    # ||C - C64||_F / ||C64||_F of an fp32 matmul against float64: ~1e-7 for true fp32,
    # ~1e-4..1e-3 when the "fp32" path really runs TF32 or bf16. None if not measured.
    fp32_rel_error: float | None = None
    # CUDA compute capability (major, minor); None on CPU.
    capability: tuple[int, int] | None = None
    # PCI vendor:device id ("10de:2330") where the platform exposes it.
    pci_id: str | None = None
    # NVIDIA kernel driver version where readable.
    driver: str | None = None
    torch_version: str = ""
    cuda_version: str | None = None
    platform: str = ""
    cpu_count: int = 0
    # Matrix size n that gave each dtype's figure, and the copy size in bytes.
    matmul_n: dict[str, int] = field(default_factory=dict)
    bandwidth_bytes: int = 0
    # Wall seconds the measurement took, and anything skipped or odd (e.g. "bf16 skipped: ...").
    elapsed_s: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def bf16_fp32_ratio(self) -> float | None:
        fp32, bf16 = self.tflops.get("fp32"), self.tflops.get("bf16")
        if not fp32 or bf16 is None:
            return None
        return bf16 / fp32

    def to_dict(self) -> dict:
        d = asdict(self)
        d["capability"] = list(self.capability) if self.capability else None
        d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if kw.get("capability") is not None:
            kw["capability"] = tuple(kw["capability"])
        kw["notes"] = tuple(kw.get("notes") or ())
        kw["tflops"] = {k: float(v) for k, v in (kw.get("tflops") or {}).items()}
        kw["matmul_n"] = {k: int(v) for k, v in (kw.get("matmul_n") or {}).items()}
        return cls(**kw)
