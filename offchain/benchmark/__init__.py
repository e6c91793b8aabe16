"""Hardware verification: the GPU class table, self-measurement, classification, and the
challenge pieces the oracle and provider agent share (see each module's docstring).

Pure: no chain, no HTTP. `gpu_classes`, `profile` and `classify` import no torch and are
re-exported here; `measure` and `challenge` import torch: use them as
`from offchain.benchmark.measure import measure` and `from offchain.benchmark import challenge`.
"""

from offchain.benchmark.classify import ClaimResult, best_match, check_claim
from offchain.benchmark.gpu_classes import CLASS_BY_ID, GPU_CLASS_TABLE, GpuClass, get_class
from offchain.benchmark.profile import Profile

__all__ = [
    "CLASS_BY_ID",
    "GPU_CLASS_TABLE",
    "ClaimResult",
    "GpuClass",
    "Profile",
    "best_match",
    "check_claim",
    "get_class",
]
