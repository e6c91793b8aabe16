"""The provider agent's Prometheus metrics (served at GET /metrics by `offchain/provider/agent.py`).

One `AgentMetrics` per process: `ProviderAgent` makes it (`agent.metrics`) and the job worker
that runs beside the agent (`gpunet provider serve` with a signer) records into the same one
(`JobWorker.metrics is agent.metrics`). Each has its own `CollectorRegistry` (`.registry`), so
tests and several agents in one process never collide.

Amounts are in wei (1e-18 token) as float counters: divide by 1e18 for tokens (a float64 keeps
~16 significant digits, plenty for a dashboard; the chain stays the ledger). docs/OPERATIONS.md
lists the metrics with their meaning and the dashboards over them (ops/grafana/provider.json).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from offchain.provider.store import STATES

CHALLENGE_KINDS = ("matmul", "memory")
# completed: answered with a commitment / root; aborted: the product passed the request's deadline;
# busy: refused with 429 (a job or another challenge held the device); invalid: a bad request (400);
# error: the agent could not do it (422: too large for the device, or an unexpected failure).
CHALLENGE_OUTCOMES = ("completed", "aborted", "busy", "invalid", "error")
ERROR_WHERE = ("cycle", "accept", "submit", "finalize", "claim", "challenge")


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.info = Gauge(
            "gpunet_agent_info",
            "Always 1: the agent's provider address, claimed class and device",
            ["provider", "claimed_class", "device", "version"],
            registry=r,
        )
        # Hardware challenges (agent side).
        self.challenges = Counter(
            "gpunet_agent_challenges",
            "Hardware challenges served, by kind (matmul, memory) and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.challenge_seconds = Histogram(
            "gpunet_agent_challenge_seconds",
            "Device time of completed challenges as reported to the oracle (provider_seconds)",
            ["kind"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf")),
            registry=r,
        )
        # The job worker.
        self.jobs = Gauge(
            "gpunet_agent_jobs",
            "Jobs in the worker's state file by state (refreshed every worker cycle)",
            ["state"],
            registry=r,
        )
        self.last_cycle = Gauge(
            "gpunet_agent_worker_last_cycle_timestamp_seconds",
            "Unix time the job worker last finished a cycle without an error (0: never)",
            registry=r,
        )
        self.cycles = Counter("gpunet_agent_worker_cycles", "Job worker cycles finished without an error", registry=r)
        self.jobs_executed = Counter(
            "gpunet_agent_jobs_executed", "Jobs the worker ran (output stored), by workload kind", ["kind"], registry=r
        )
        self.job_seconds = Histogram(
            "gpunet_agent_job_seconds",
            "Wall time of job executions on the device",
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600, float("inf")),
            registry=r,
        )
        # Earnings, in wei.
        self.credited = Counter(
            "gpunet_agent_credited_wei",
            "Escrow minus fees of own jobs seen finalized (credited by JobMarket; the most their claim mints), wei",
            registry=r,
        )
        self.claimed = Counter(
            "gpunet_agent_claimed_wei",
            "Tokens minted to the provider by its own claims (Settled.minted), wei",
            registry=r,
        )
        self.claims = Counter("gpunet_agent_claims", "Claims this worker made (market.claim)", registry=r)
        self.errors = Counter(
            "gpunet_agent_errors",
            "Errors by where: a worker cycle that raised, failed accept/submit/finalize/claim transactions, "
            "challenges the agent could not serve",
            ["where"],
            registry=r,
        )
        # Every series exists from the start (0 until it happens): rate() and dashboards need no "absent".
        for kind in CHALLENGE_KINDS:
            for outcome in CHALLENGE_OUTCOMES:
                self.challenges.labels(kind, outcome)
            self.challenge_seconds.labels(kind)
        for where in ERROR_WHERE:
            self.errors.labels(where)
        for state in STATES:
            self.jobs.labels(state).set(0)

    # ------------------------------------------------------------------ helpers
    def set_info(self, provider: str, claimed_class: str, device: str, version: str) -> None:
        self.info.labels(provider.lower(), claimed_class, device, version).set(1)

    def error(self, where: str) -> None:
        self.errors.labels(where).inc()

    def set_job_counts(self, counts: dict[str, int]) -> None:
        """`WorkerStore.counts()`: every known state is set, those with no job to 0."""
        for state in STATES:
            self.jobs.labels(state).set(int(counts.get(state, 0)))

    def serve_challenge(self, kind: str, fn: Callable[[], dict[str, Any]], busy_status: int = 429) -> dict[str, Any]:
        """Runs one challenge (`fn`) and counts its outcome; returns its reply or re-raises.

        An exception with a `status` attribute (`RequestError`) is a refusal: 429 busy, 400
        invalid, anything else (422) an error; any other exception is an error too.
        """
        try:
            reply = fn()
        except Exception as e:
            status = getattr(e, "status", None)
            if status == busy_status:
                outcome = "busy"
            elif status == 400:
                outcome = "invalid"
            else:
                outcome = "error"
                self.error("challenge")
            self.challenges.labels(kind, outcome).inc()
            raise
        if reply.get("aborted"):
            self.challenges.labels(kind, "aborted").inc()
        else:
            self.challenges.labels(kind, "completed").inc()
            seconds = reply.get("provider_seconds")
            if isinstance(seconds, int | float):
                self.challenge_seconds.labels(kind).observe(float(seconds))
        return reply


def metrics_of(owner: Any) -> AgentMetrics:
    """`owner.metrics` (the agent's, shared by its worker), or a private one where there is none
    (a worker or payout built by hand in a test, an agent stand-in without metrics)."""
    m = getattr(owner, "metrics", None)
    return m if isinstance(m, AgentMetrics) else AgentMetrics()


__all__ = ["CHALLENGE_KINDS", "CHALLENGE_OUTCOMES", "ERROR_WHERE", "AgentMetrics", "metrics_of"]
