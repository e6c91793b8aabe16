"""Scenario files for `gpunet sim` (JSON or TOML, same keys; see scenarios/small.json).

Top level: name, epochs, seed, fee_bps (network fee on a job's USD value), sell_share (share of
its token income a provider sells each epoch), market {initial_price_usd, pool_tokens,
speculative_noise_usd}, emissions {initial_epoch_emission, decay_bps, emission_cap,
taper_reference (whole tokens), work_share_bps, wash_guard_bps}, classes {GPU class name (from
offchain.params.GPU_CLASSES): {price_usd, cost_usd (per compute unit = one GPU-hour),
fixed_cost_usd (per GPU and epoch, running or not), units_per_gpu (per epoch)}}, demand {units
{class: units per epoch at multiplier 1}, profile [[epoch, multiplier], ...] (piecewise
linear), spikes {epoch: multiplier}, noise (lognormal sigma), job_units}, agents [{name, kind
(honest | idle | sybil | wash | cheater), machines [[class, gpus], ...], fixed_cost_usd
(override per GPU), wash_usd (wash trader: fake job value per epoch), extra_stake (tokens above
the machines' required stake)}], beacon {silent {epoch: how many of the 5 oracle operators
withhold their AuditBeacon reveal that epoch (its draw round is degraded: every job audited)}}
(optional), claim {every_epochs (a provider claims its pay, JobMarket.claim, at the end of the
epoch its oldest unclaimed job is that many epochs old; default 1: daily), min_usd (or as soon as
its accrued USD value minus fees reaches this; default 0: no threshold)} (optional; everything
is claimed at the end of a run whatever the policy).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offchain.params import CLASS_BY_NAME

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO = SCENARIOS / "small.json"
KINDS = ("honest", "idle", "sybil", "wash", "cheater")
# Providers' claim policy by default: each claims at the end of every epoch it has pay accrued.
CLAIM_DEFAULTS = {"every_epochs": 1, "min_usd": 0.0}


@dataclass(frozen=True)
class ClassEcon:
    name: str
    class_id: int
    min_stake_tokens: int
    price_usd: float
    cost_usd: float
    fixed_cost_usd: float
    units_per_gpu: int


@dataclass(frozen=True)
class AgentSpec:
    name: str
    kind: str
    machines: tuple[tuple[str, int], ...] = ()
    fixed_cost_usd: float | None = None
    wash_usd: float = 0.0
    extra_stake: int = 0


@dataclass
class Scenario:
    name: str
    epochs: int
    seed: int
    fee_bps: int
    sell_share: float
    market: dict[str, float]
    emissions: dict[str, int]
    classes: dict[str, ClassEcon]
    demand: dict[str, Any]
    agents: list[AgentSpec]
    description: str = ""
    # The audit draw's beacon: {"silent": {epoch (str): operators withholding their reveal}}.
    beacon: dict[str, Any] = field(default_factory=dict)
    # Providers' claim policy: {"every_epochs": int >= 1, "min_usd": float >= 0} (see the module doc).
    claim: dict[str, Any] = field(default_factory=lambda: dict(CLAIM_DEFAULTS))
    raw: dict[str, Any] = field(default_factory=dict)

    def demand_multiplier(self, epoch: int) -> float:
        """Piecewise-linear profile at `epoch` times any spike there (noise is drawn by the engine)."""
        pts = sorted((int(e), float(m)) for e, m in self.demand.get("profile", [[0, 1.0]]))
        if epoch <= pts[0][0]:
            base = pts[0][1]
        elif epoch >= pts[-1][0]:
            base = pts[-1][1]
        else:
            base = pts[-1][1]
            for (e0, m0), (e1, m1) in zip(pts, pts[1:], strict=False):
                if e0 <= epoch <= e1:
                    base = m0 + (m1 - m0) * (epoch - e0) / max(1, e1 - e0)
                    break
        spike = float(self.demand.get("spikes", {}).get(str(epoch), 1.0))
        return base * spike


def _from_dict(d: dict[str, Any]) -> Scenario:
    classes = {}
    for name, c in d["classes"].items():
        if name not in CLASS_BY_NAME:
            raise ValueError(f"unknown GPU class {name!r} (see offchain/params.py GPU_CLASSES)")
        spec = CLASS_BY_NAME[name]
        classes[name] = ClassEcon(
            name=name,
            class_id=spec.class_id,
            min_stake_tokens=spec.min_stake_tokens,
            price_usd=float(c["price_usd"]),
            cost_usd=float(c["cost_usd"]),
            fixed_cost_usd=float(c.get("fixed_cost_usd", 0.0)),
            units_per_gpu=int(c["units_per_gpu"]),
        )
    agents = []
    names = set()
    for a in d["agents"]:
        if a["kind"] not in KINDS:
            raise ValueError(f"agent {a['name']!r}: kind must be one of {KINDS}")
        if a["name"] in names:
            raise ValueError(f"duplicate agent name {a['name']!r}")
        names.add(a["name"])
        machines = tuple((str(m[0]), int(m[1])) for m in a.get("machines", []))
        for cls, _ in machines:
            if cls not in classes:
                raise ValueError(f"agent {a['name']!r}: class {cls!r} is not in the scenario's classes")
        agents.append(
            AgentSpec(
                name=a["name"],
                kind=a["kind"],
                machines=machines,
                fixed_cost_usd=a.get("fixed_cost_usd"),
                wash_usd=float(a.get("wash_usd", 0.0)),
                extra_stake=int(a.get("extra_stake", 0)),
            )
        )
    beacon = dict(d.get("beacon", {}))
    silent = {str(int(e)): int(n) for e, n in beacon.get("silent", {}).items()}
    if any(n < 0 for n in silent.values()):
        raise ValueError("beacon.silent: operator counts must be >= 0")
    beacon["silent"] = silent
    c = d.get("claim", {})
    unknown = set(c) - set(CLAIM_DEFAULTS)
    if unknown:
        raise ValueError(f"claim: unknown keys {sorted(unknown)} (every_epochs, min_usd)")
    claim = {k: type(v)(c.get(k, v)) for k, v in CLAIM_DEFAULTS.items()}
    if claim["every_epochs"] < 1 or claim["min_usd"] < 0:
        raise ValueError("claim: every_epochs must be >= 1 and min_usd >= 0")
    return Scenario(
        name=d.get("name", "scenario"),
        description=d.get("description", ""),
        epochs=int(d["epochs"]),
        seed=int(d.get("seed", 0)),
        fee_bps=int(d.get("fee_bps", 500)),
        sell_share=float(d.get("sell_share", 0.5)),
        market={k: float(v) for k, v in d["market"].items()},
        emissions={k: int(v) for k, v in d["emissions"].items()},
        classes=classes,
        demand=d["demand"],
        agents=agents,
        beacon=beacon,
        claim=claim,
        raw=d,
    )


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Reads a .json or .toml scenario (default: scenarios/small.json)."""
    p = Path(path) if path else DEFAULT_SCENARIO
    if p.suffix == ".toml":
        with p.open("rb") as f:
            data = tomllib.load(f)
    else:
        data = json.loads(p.read_text())
    return _from_dict(data)
