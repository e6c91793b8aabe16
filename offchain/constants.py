"""Python mirrors of on-chain constants. Tests assert these equal the contracts' values."""

from enum import IntEnum


class MachineStatus(IntEnum):
    NONE = 0
    PENDING = 1
    ACTIVE = 2
    JAILED = 3
    EXITED = 4


class JobStatus(IntEnum):
    NONE = 0
    OPEN = 1
    RUNNING = 2
    SUBMITTED = 3
    AUDIT = 4
    FINALIZED = 5
    FAILED = 6
    CANCELLED = 7
    EXPIRED = 8


TERMINAL_JOB_STATUSES = frozenset({JobStatus.FINALIZED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED})

MAX_BPS = 10_000
MAX_BATCH = 100
TOKEN_DECIMALS = 18
ONE_TOKEN = 10**TOKEN_DECIMALS

# Job struct field order (must match contracts/JobMarket.vy `struct Job`).
JOB_FIELDS = (
    "user",
    "provider",
    "machine_id",
    "class_id",
    "spec_hash",
    "compute_units",
    "payment",
    "usd_value",
    "collateral",
    "fee_bps",
    "accept_by",
    "complete_within",
    "complete_by",
    "result_hash",
    "challenge_end",
    "audit_bps",
    "draw_round",
)

# JobMarket.Params field order (must match contracts/JobMarket.vy `struct Params`).
PARAM_FIELDS = (
    "fee_bps",
    "collateral_bps",
    "challenge_window",
    "audit_timeout",
    "min_accept_window",
    "max_accept_window",
    "min_complete_within",
    "max_complete_within",
    "dispute_bond_bps",
    "min_dispute_bond",
    "noshow_penalty_bps",
    "user_compensation_bps",
    "challenger_reward_bps",
    "base_audit_bps",
    "new_provider_audit_bps",
    "trusted_after_jobs",
    "bad_record_audit_bps",
    "detection_bps",
    "min_reputation_usd",
)

# ProviderRegistry.Reputation field order.
REPUTATION_FIELDS = ("completed", "failed", "expired", "audits_passed", "disputes_won", "disputes_lost")
