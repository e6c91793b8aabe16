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
