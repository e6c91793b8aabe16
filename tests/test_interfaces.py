"""One struct, three readers that must agree: `Job` is defined once in
contracts/interfaces/IJobMarket.vyi and compiled into both JobMarket and OracleHub, and the
off-chain code mirrors it (JOB_FIELDS / JOB_ABI_TYPES). ape does not recompile a contract when
only a .vyi it imports changes (`ape compile --force`): a stale artifact of one of them would
make OracleHub pass verdicts for the wrong data, which this test catches."""

from offchain.chain.jobs import JOB_ABI_TYPES
from offchain.constants import JOB_FIELDS


def _job_components(contract_type, method):
    (abi,) = [a for a in contract_type.abi if getattr(a, "name", None) == method]
    (job,) = [i for i in abi.inputs if i.name == "job"]
    return [(c.name, c.type) for c in job.components]


def test_job_struct__identical_in_market_hub_and_offchain(project):
    market = _job_components(project.JobMarket.contract_type, "finalize")
    hub = _job_components(project.OracleHub.contract_type, "submit_verdict")
    assert market == hub
    assert [name for name, _ in market] == list(JOB_FIELDS)
    assert [t for _, t in market] == list(JOB_ABI_TYPES)


def _components(contract_type, method, arg):
    (abi,) = [a for a in contract_type.abi if getattr(a, "name", None) == method]
    (param,) = [i for i in abi.inputs if i.name == arg]
    comps = param.components
    return [(c.name, c.type) for c in comps]


def test_report_structs__identical_in_hub_emissions_and_price_feed(project):
    """OracleHub's equivocation proofs take Emissions' EpochRewards and PriceFeed's
    PriceObservation (contracts/interfaces/IReportDigests.vyi): the same fields as the
    contracts that accept them, or the hub would hash other data than the operators signed."""
    hub = project.OracleHub.contract_type
    assert _components(hub, "prove_rewards_equivocation", "a") == _components(
        project.Emissions.contract_type, "submit_rewards", "report"
    )
    hub_obs = _components(hub, "prove_observation_equivocation", "a")
    (submit,) = [a for a in project.PriceFeed.contract_type.abi if getattr(a, "name", None) == "submit_round"]
    (observations,) = [i for i in submit.inputs if i.name == "observations"]
    assert hub_obs == [(c.name, c.type) for c in observations.components]
