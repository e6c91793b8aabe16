"""The parameters of `make demo` (scripts/demo.py): the deployment's, the processes' command
lines, prices and the jobs' workloads."""

from __future__ import annotations

from offchain.constants import ONE_TOKEN, JobStatus
from offchain.params import EmissionsParams, MarketParams

CPU_CLASS = 1
PRICE = 10**17  # $0.10 per compute unit, USD with 18 decimals (1 unit = 1 GFLOP, offchain/workloads)
USD = 10**18
# The flaky provider's job: it must deliver within 60 s of accepting (it never does).
FLAKY_COMPLETE_WITHIN = 60
CHALLENGE_WINDOW = 120
PARAMS = MarketParams(
    challenge_window=CHALLENGE_WINDOW,
    min_accept_window=60,
    min_complete_within=60,
    base_audit_bps=5_000,
    new_provider_audit_bps=5_000,  # every provider here is new: about half the jobs are drawn
)
# Emissions: a 15-minute epoch 0 that the whole job phase falls in (anvil's clock then jumps
# past its end); a demo-sized schedule (100 GPU in epoch 0) so the pools read next to job pay.
EPOCH_SECONDS = 900
EMISSIONS = EmissionsParams(
    epoch_seconds=EPOCH_SECONDS, initial_epoch_emission=100 * ONE_TOKEN, taper_reference=1_000 * ONE_TOKEN
)
USD_PRICE = "1.25"  # every operator's price source: `fixed:1.25`
ORACLE_ARGS = ["--leader-timeout", "15", "--poll", "0.5", "--network-allowance", "0.5", "--memory-fraction", "0.5",
               "--confirm-delay", "1", "--ttl", "3600", "--audit-fetch-timeout", "5", "--audit-device", "cpu",
               "--price-source", f"fixed:{USD_PRICE}", "--emissions-epochs", "--probes-per-epoch", str(EPOCH_SECONDS),
               "--rewards-delay", "3"]  # fmt: skip
AGENT_ARGS = ["--poll", "0.3"]
TERMINAL = {JobStatus.FINALIZED, JobStatus.FAILED, JobStatus.EXPIRED}
DEPLOYMENT_ENV = "GPUNET_DEPLOYMENT"  # offchain/chain/client.py: the record every child process uses


def matmul(seed: int) -> dict:
    return {"kind": "matmul_chain", "params": {"n": 256, "k": 3}, "seed": seed}


def mlp(seed: int) -> dict:
    p = {"in_dim": 16, "hidden": [32], "out_dim": 4, "samples": 256, "batch": 32, "steps": 20}
    return {"kind": "mlp_train", "params": p, "seed": seed}


def toploc(seed: int) -> dict:
    p = {"vocab": 64, "d_model": 32, "layers": 2, "heads": 2, "prompt_len": 4, "new_tokens": 8, "topk": 4}
    return {"kind": "toploc_generate", "params": p, "seed": seed}
