"""JobMarket's extension (contracts/JobMarketExt.vy): the paths off the hot path run at the
market's address through its fallback (delegatecall). What must hold: one storage layout for
both halves, an extension built for this market only, nothing reachable through the extension's
own address, and calls through the market behaving exactly as if the code were the market's
(return data, revert reasons, events, roles)."""

import json
import subprocess
import sys
from pathlib import Path

import ape
import pytest
from eth_utils import keccak

from offchain.chain.market_abi import market_at, merged_contract_type

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
ZERO_ADDRESS = "0x" + "00" * 20
DEFAULT_ADMIN_ROLE = b"\x00" * 32


def _layout(name: str) -> dict:
    import snekmate

    search = Path(list(snekmate.__path__)[0]).parent  # a namespace package: no __file__
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "vyper"),
            "-f",
            "layout",
            "-p",
            str(search),
            "-p",
            str(CONTRACTS),
            f"{name}.vy",
        ],
        cwd=CONTRACTS,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return json.loads(out)


def test_layout__market_and_extension__one_storage_and_one_lock_slot():
    market, ext = _layout("JobMarket"), _layout("JobMarketExt")
    assert market["storage_layout"] == ext["storage_layout"]
    assert market["transient_storage_layout"] == ext["transient_storage_layout"]
    # The market declares no storage of its own: every slot is a shared module's.
    assert set(market["storage_layout"]) == {
        "access_control",
        "job_store",
        "market_params",
        "market_funds",
        "market_audits",
    }


def test_constructor__extension_for_another_market__refused(
    project, deployer, token, registry, settlement, params_check, beacon, accounts
):
    args = (token, registry, settlement, params_check, beacon)
    other_beacon = deployer.deploy(project.AuditBeacon, beacon.ROUND_SECONDS(), beacon.REVEAL_WINDOW())
    foreign = deployer.deploy(project.JobMarketExt, token, registry, settlement, params_check, other_beacon)
    params = params_check_default(project, deployer, args)
    with ape.reverts("job_market: extension built for another market"):
        deployer.deploy(project.JobMarket, *args, foreign, params)
    with ape.reverts("job_market: extension has no code"):
        deployer.deploy(project.JobMarket, *args, accounts[7], params)
    ext = deployer.deploy(project.JobMarketExt, *args)
    m = deployer.deploy(project.JobMarket, *args, ext, params)
    assert m.EXTENSION() == ext.address


def params_check_default(project, deployer, args):
    # A parameter set the checker accepts: the one the session deployment runs on.
    from offchain.params import MarketParams

    return MarketParams().as_tuple()


def test_extension__own_address__no_admin_no_jobs_no_funds(project, deployment, deployer, market, token, user):
    ext = project.JobMarketExt.at(deployment.record["contracts"]["JobMarketExt"])
    # The constructor renounced the admin role snekmate grants the deployer in its own storage.
    assert not ext.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert market.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    with ape.reverts("access_control: account is missing role"):
        ext.pause(sender=deployer)
    assert token.balanceOf(ext) == 0
    # Its storage knows no job, so it can move nothing of the market's.
    assert ext.params()[0] == 0 and market.params()[0] > 0


def test_fallback__unknown_selector__reverts(chain, market, user):
    # The extension has no fallback of its own: a selector neither half has is refused.
    call = {"from": user.address, "to": market.address, "data": keccak(text="no_such_function()")[:4] + b"\x00" * 32}
    with pytest.raises(Exception, match="revert"):
        chain.provider.web3.eth.call(call)


def test_fallback__return_data_and_reasons__as_if_one_contract(market, deployer, user):
    # A struct answer (the largest: 19 words), a bool, a revert reason from the extension.
    assert len(market.params()) == 19
    assert market.hasRole(market.PAUSER_ROLE(), deployer)
    with ape.reverts("access_control: account is missing role"):
        market.pause(sender=user)
    tx = market.pause(sender=deployer)
    assert [e.account for e in tx.decode_logs(market.Paused)] == [deployer.address]
    assert market.paused()
    market.unpause(sender=deployer)
    assert not market.paused()


def test_merged_abi__both_halves_once(project):
    ct = merged_contract_type(project)
    names = [(e.type, e.name) for e in ct.abi if e.type in ("function", "event")]
    assert len(names) == len(set(names))
    for fn in ("create_job", "finalize", "claim", "cancel", "dispute", "post_verdict", "set_params", "EXTENSION"):
        assert ("function", fn) in names
    for ev in ("JobCreated", "JobCancelled", "JobDisputed", "VerdictPosted", "Paused"):
        assert ("event", ev) in names


@pytest.fixture(scope="module")
def beacon(deployment):
    return deployment.beacon


@pytest.fixture(scope="module")
def settlement(deployment):
    return deployment.settlement


def test_market_at__same_address_both_halves(project, market):
    again = market_at(project, market.address)
    assert again.address == market.address
    assert again.job_count() == market.job_count()
    assert again.PARAMS_CHECK() == market.PARAMS_CHECK()


def _static_size(t) -> int | None:
    """ABI-encoded size of a static output type (None: dynamic)."""
    if t.type.endswith("[]") or t.type in ("string", "bytes"):
        return None
    if t.type == "tuple":
        sizes = [_static_size(c) for c in t.components]
        return None if None in sizes else sum(sizes)
    return 32


def test_fallback__every_extension_answer_fits_its_return_buffer(project):
    """JobMarket's fallback passes back at most _EXT_MAX_RETURN (1,024) bytes of an extension
    function's answer: a longer or dynamic one would be cut short, so none may exist."""
    for fn in project.JobMarketExt.contract_type.abi:
        if fn.type != "function":
            continue
        sizes = [_static_size(o) for o in fn.outputs]
        assert None not in sizes, f"{fn.name} returns a dynamic type: the fallback cannot pass it back whole"
        assert sum(sizes) <= 1024, f"{fn.name} returns {sum(sizes)} bytes, more than the fallback's 1,024"
