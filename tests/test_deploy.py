"""Deployment wiring: the local layout (deployer holds the roles) and the production layout
(a Timelock holds the admin role and the token's ownership; the deployer keeps nothing).
JobMarketParams is deployed before JobMarket and passed to it; the registry's set-once
`job_market` is the market (no collateral or slasher role for it); the token's minter set is
sealed unless a local deployment asks otherwise (the session deployment in conftest does)."""

import ape
import pytest

from offchain.chain.deploy import DEFAULT_ADMIN_ROLE, deploy_all, role
from offchain.params import GPU_CLASSES, BeaconParams, MarketParams


def test_deploy__local__deployer_holds_operational_roles(deployment, deployer, registry, market, token, params):
    for contract in (registry, market):
        assert contract.hasRole(DEFAULT_ADMIN_ROLE, deployer)
        assert contract.hasRole(role("PAUSER_ROLE"), deployer)
    assert registry.hasRole(role("ATTESTER_ROLE"), deployer)
    assert market.hasRole(role("VERIFIER_ROLE"), deployer)
    # The market is the registry's set-once job market; it holds no collateral or slasher role.
    assert registry.job_market() == market.address
    assert not hasattr(registry, "COLLATERAL_ROLE")
    assert not registry.hasRole(role("COLLATERAL_ROLE"), market)
    assert not registry.hasRole(role("SLASHER_ROLE"), market)
    assert token.owner() == deployer
    # conftest deploys with seal_minters=False (unit tests add minters of their own).
    assert not token.minters_sealed()
    params_check = deployment.record["contracts"]["JobMarketParams"]
    assert market.PARAMS_CHECK() == params_check
    assert deployment.record["constructor_args"]["JobMarketParams"] == []
    beacon = deployment.beacon
    assert deployment.record["constructor_args"]["JobMarket"][:5] == [
        token.address,
        registry.address,
        deployment.settlement.address,
        params_check,
        beacon.address,
    ]
    ext = deployment.record["contracts"]["JobMarketExt"]
    assert deployment.record["constructor_args"]["JobMarket"][5:] == [ext, params.as_dict()]
    args = deployment.record["constructor_args"]
    assert args["JobMarketExt"] == args["JobMarket"][:5]
    assert market.EXTENSION() == ext
    # The audit draw: AuditBeacon with the default rounds, admin the deployer, no members (the
    # session deployment has no oracle operators: every audited job's round degrades).
    assert deployment.record["contracts"]["AuditBeacon"] == beacon.address == market.BEACON()
    assert deployment.record["constructor_args"]["AuditBeacon"] == list(BeaconParams().as_tuple())
    assert (beacon.ROUND_SECONDS(), beacon.REVEAL_WINDOW()) == BeaconParams().as_tuple()
    assert beacon.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert beacon.member_count() == 0
    hub = deployment.hub
    assert registry.hasRole(role("ATTESTER_ROLE"), hub)
    assert registry.hasRole(role("SLASHER_ROLE"), hub)
    assert hub.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert hub.threshold() == 1
    feed = deployment.price_feed
    assert feed.HUB() == hub.address
    assert feed.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert deployment.record["contracts"]["PriceFeed"] == feed.address
    settlement = deployment.settlement
    assert deployment.record["contracts"]["Settlement"] == settlement.address
    assert settlement.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert settlement.TOKEN() == token.address
    # Deployed on the hub's PriceFeed (conftest then points it at a feed holding a $1.00 round).
    assert deployment.record["constructor_args"]["Settlement"][:2] == [token.address, feed.address]
    assert settlement.job_market() == market.address
    assert market.SETTLEMENT() == settlement.address
    assert token.is_minter(settlement)
    assert deployment.emissions.BURNS() == market.address  # the taper counts finalized escrow
    for c in GPU_CLASSES:
        assert registry.gpu_classes(c.class_id).name == c.name
        assert registry.class_exists(c.class_id)
    # Accounts' encryption keys: no constructor arguments, no roles (nothing published yet).
    keys = deployment.key_directory
    assert deployment.record["contracts"]["KeyDirectory"] == keys.address
    assert deployment.record["constructor_args"]["KeyDirectory"] == []
    assert deployment.record["tx"]["KeyDirectory"]
    assert keys.key_version(deployer) == 0
    assert not hasattr(keys, "hasRole") and not hasattr(keys, "owner")


def test_deploy__production__timelock_holds_admin_and_deployer_keeps_nothing(project, chain, accounts):
    deployer, guardian, oracle = accounts[8], accounts[9], accounts[7]
    d = deploy_all(
        project,
        deployer,
        local=False,
        guardian=guardian.address,
        verifier=oracle.address,
        operators=[a.address for a in accounts[1:4]],
        threshold=2,
    )
    timelock = d.timelock
    assert timelock is not None
    assert d.hub.threshold() == 2
    assert d.hub.operator_count() == 3
    assert d.hub.hasRole(DEFAULT_ADMIN_ROLE, timelock)
    assert not d.hub.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    for contract in (d.registry, d.market):
        assert contract.hasRole(DEFAULT_ADMIN_ROLE, timelock)
        assert not contract.hasRole(DEFAULT_ADMIN_ROLE, deployer)
        assert not contract.hasRole(role("PAUSER_ROLE"), deployer)
        assert contract.hasRole(role("PAUSER_ROLE"), guardian)
    assert d.registry.hasRole(role("ATTESTER_ROLE"), d.hub)
    assert not d.registry.hasRole(role("ATTESTER_ROLE"), deployer)
    assert d.market.hasRole(role("VERIFIER_ROLE"), oracle)
    assert d.token.owner() == timelock
    assert not d.token.is_minter(deployer)
    assert timelock.get_minimum_delay() == 2 * 24 * 3600
    assert d.record["contracts"]["Timelock"] == timelock.address
    assert d.price_feed.hasRole(DEFAULT_ADMIN_ROLE, timelock)
    assert not d.price_feed.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert d.settlement.hasRole(DEFAULT_ADMIN_ROLE, timelock)
    assert not d.settlement.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert d.record["contracts"]["Settlement"] == d.settlement.address
    # The market's collateral rights are the registry's set-once address, out of the timelock's
    # reach: no role to revoke, and set_job_market cannot be called again.
    assert d.registry.job_market() == d.market.address
    assert not d.registry.hasRole(role("SLASHER_ROLE"), d.market)
    assert d.registry.hasRole(role("SLASHER_ROLE"), d.hub)
    assert d.market.PARAMS_CHECK() == d.record["contracts"]["JobMarketParams"]
    assert d.token.minters_sealed()
    # The oracle operators are the audit beacon's members (each commits its chain itself),
    # active two rounds after deployment; the timelock alone may change the member set.
    beacon = d.beacon
    assert d.record["contracts"]["AuditBeacon"] == beacon.address == d.market.BEACON()
    operators = [a.address for a in accounts[1:4]]
    assert [beacon.member_list(i) for i in range(beacon.member_count())] == operators
    added = chain.blocks[chain.provider.get_receipt(d.record["tx"]["AuditBeacon"]).block_number].timestamp
    for op in operators:
        m = beacon.members(op)
        assert m.active_until == 2**256 - 1 and m.tip == b"\x00" * 32
        assert added // beacon.ROUND_SECONDS() + 2 <= m.active_from <= beacon.current_round() + 2
    assert beacon.hasRole(DEFAULT_ADMIN_ROLE, timelock)
    assert not beacon.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    # KeyDirectory has no admin to hand over: recorded like the others, nothing for the timelock.
    assert d.record["contracts"]["KeyDirectory"] == d.key_directory.address
    assert set(d.record["tx"]) == set(d.record["contracts"])


def test_deploy__production__settlement_and_emissions_are_the_only_minters_and_sealed(project, accounts):
    """Settlement and Emissions are made minters, the minter set is sealed, and then the token's
    ownership moves to the timelock: the move drops the deployer's minter flag and does not make
    the timelock a minter; sealed, the set can no longer change under the timelock. Emissions has no admin role;
    Settlement's admin is the timelock."""
    deployer = accounts[8]
    d = deploy_all(project, deployer, local=False)
    assert d.token.is_minter(d.settlement)
    assert d.token.is_minter(d.emissions)
    assert not d.token.is_minter(d.timelock)
    assert not d.token.is_minter(deployer)
    assert d.token.owner() == d.timelock.address
    assert d.token.minters_sealed()
    assert d.emissions.HUB() == d.hub.address
    assert d.emissions.TOKEN() == d.token.address
    assert d.emissions.BURNS() == d.market.address
    assert d.market.SETTLEMENT() == d.settlement.address
    assert d.settlement.job_market() == d.market.address
    assert d.settlement.price_feed() == d.price_feed.address
    assert d.settlement.max_age() == 3600
    assert d.settlement.hasRole(DEFAULT_ADMIN_ROLE, d.timelock)
    assert not d.settlement.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert d.record["contracts"]["Emissions"] == d.emissions.address
    assert d.record["contracts"]["Settlement"] == d.settlement.address
    assert d.record["constructor_args"]["Settlement"] == [d.token.address, d.price_feed.address, 3600]
    assert d.record["constructor_args"]["JobMarket"][2] == d.settlement.address
    assert d.record["constructor_args"]["JobMarket"][3] == d.record["contracts"]["JobMarketParams"]
    assert d.record["constructor_args"]["Emissions"][2] == d.market.address
    assert d.record["roles"]["minters"] == [d.settlement.address, d.emissions.address]


def test_deploy__local_default__seals_minters_and_wires_params_check(project, chain, accounts):
    """deploy_all seals the token's minters by default, on local networks too; the deployer
    stays a minter there (the local faucet) but no one can be added or removed."""
    deployer = accounts[8]
    d = deploy_all(project, deployer, local=True)
    assert d.token.minters_sealed()
    assert d.token.is_minter(deployer)
    assert d.token.is_minter(d.settlement) and d.token.is_minter(d.emissions)
    for minter, status in ((accounts[9], True), (d.settlement, False)):
        with ape.reverts("compute_token: minters sealed"):
            d.token.set_minter(minter, status, sender=deployer)
    assert d.token.is_minter(d.settlement) and not d.token.is_minter(accounts[9])
    # JobMarketParams is deployed before JobMarket and is the market's checker.
    blocks = {k: chain.provider.get_receipt(d.record["tx"][k]).block_number for k in ("JobMarketParams", "JobMarket")}
    assert blocks["JobMarketParams"] < blocks["JobMarket"]
    params_check = project.JobMarketParams.at(d.record["contracts"]["JobMarketParams"])
    assert d.market.PARAMS_CHECK() == params_check.address
    assert params_check.MAX_FEE_BPS() == 2_000
    assert params_check.pack(MarketParams().as_tuple()) > 0  # the default set passes its bounds
    assert tuple(d.market.params()) == MarketParams().as_tuple()
    assert d.record["constructor_args"]["JobMarket"][3:] == [
        params_check.address,
        d.beacon.address,
        d.record["contracts"]["JobMarketExt"],
        MarketParams().as_dict(),
    ]
    # The registry's job market is the market, set once.
    assert d.registry.job_market() == d.market.address
    with ape.reverts("registry: job market already set"):
        d.registry.set_job_market(accounts[9], sender=deployer)
    assert not d.registry.hasRole(role("SLASHER_ROLE"), d.market)


def test_deploy__unsealed_minters_outside_local__refused(project, accounts):
    with pytest.raises(ValueError, match="always sealed outside local networks"):
        deploy_all(project, accounts[8], local=False, seal_minters=False)
