"""The oracle operator's Prometheus metrics (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.cycles = Counter("gpunet_oracle_cycles", "Loop cycles", registry=self.registry)
        self.rpc_errors = Counter("gpunet_oracle_rpc_errors", "RPC errors (retried)", registry=self.registry)
        self.challenges = Counter(
            "gpunet_oracle_challenges", "Hardware challenges run", ["outcome", "role"], registry=self.registry
        )
        self.reports_submitted = Counter(
            "gpunet_oracle_reports_submitted", "Reports submitted on-chain", ["kind"], registry=self.registry
        )
        self.signatures_given = Counter(
            "gpunet_oracle_signatures_given", "Reports co-signed for peers", ["kind"], registry=self.registry
        )
        self.signatures_refused = Counter(
            "gpunet_oracle_signatures_refused", "Co-sign requests refused", ["kind", "reason"], registry=self.registry
        )
        self.last_block = Gauge("gpunet_oracle_last_block", "Last processed block", registry=self.registry)
        self.machines = Gauge("gpunet_oracle_machines", "Machines known", ["status"], registry=self.registry)
        self.audits_opened = Counter(
            "gpunet_oracle_audits_opened",
            "Drawn jobs this operator began auditing (a sampled audit needs no transaction)",
            registry=self.registry,
        )
        self.audits = Counter(
            "gpunet_oracle_audits", "Own job audits completed", ["valid", "reason"], registry=self.registry
        )
        self.audit_failures = Counter(
            "gpunet_oracle_audit_failures", "Audits the oracle could not finish (retried)", registry=self.registry
        )
        self.audit_seconds = Histogram(
            "gpunet_oracle_audit_seconds",
            "Wall time of own audits (fetch + re-execution)",
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800, float("inf")),
            registry=self.registry,
        )
        self.challenge_seconds = Histogram(
            "gpunet_oracle_challenge_seconds",
            "Wall time of own hardware challenges, leader and peer, whole (matmul round, memory proof, transfers)",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, float("inf")),
            registry=self.registry,
        )
        self.audit_executed_units = Counter(
            "gpunet_oracle_audit_executed_units",
            "Compute units re-executed by own audits (verification overhead numerator)",
            registry=self.registry,
        )
        self.audited_job_units = Counter(
            "gpunet_oracle_audited_job_units", "Compute units of the jobs this operator audited", registry=self.registry
        )
        self.submitted_job_units = Counter(
            "gpunet_oracle_submitted_job_units",
            "Compute units of all jobs whose results were submitted (overhead denominator)",
            registry=self.registry,
        )
        self.verdicts = Counter(
            "gpunet_oracle_verdicts", "Verdicts posted on-chain (by any operator)", ["valid"], registry=self.registry
        )
        self.price_last = Gauge(
            "gpunet_oracle_price_usd", "Latest PriceFeed answer (USD per token)", registry=self.registry
        )
        self.price_round = Gauge("gpunet_oracle_price_round", "Latest PriceFeed round", registry=self.registry)
        self.price_rounds_submitted = Counter(
            "gpunet_oracle_price_rounds_submitted", "PriceFeed rounds this operator submitted", registry=self.registry
        )
        self.price_observations = Counter(
            "gpunet_oracle_price_observations_signed", "Own price observations signed", registry=self.registry
        )
        self.price_source_errors = Counter(
            "gpunet_oracle_price_source_errors", "Price source reads that failed", registry=self.registry
        )
        self.emission_epochs_finalized = Counter(
            "gpunet_oracle_emission_epochs_finalized",
            "Emissions epochs this operator finalized",
            registry=self.registry,
        )
        self.rewards_epoch = Gauge(
            "gpunet_oracle_rewards_epoch", "Latest Emissions epoch whose rewards root is posted", registry=self.registry
        )
        self.rewards_built = Counter(
            "gpunet_oracle_rewards_built", "Epoch rewards trees built from the chain", registry=self.registry
        )
        self.beacon_reveals = Counter(
            "gpunet_oracle_beacon_reveals", "AuditBeacon reveals this operator sent", registry=self.registry
        )
        self.beacon_rounds_missed = Counter(
            "gpunet_oracle_beacon_rounds_missed",
            "AuditBeacon rounds with drawn jobs this operator could not reveal in (degraded: all audited)",
            registry=self.registry,
        )
        self.beacon_commits = Counter(
            "gpunet_oracle_beacon_commits", "AuditBeacon hash chains this operator committed", registry=self.registry
        )
        self.beacon_chain_left = Gauge(
            "gpunet_oracle_beacon_chain_left",
            "Values left on the operator's committed hash chain",
            registry=self.registry,
        )
