"""Deployment wiring: the local layout (deployer holds the roles) and the production layout
(a Timelock holds the admin role and the token's ownership; the deployer keeps nothing)."""

from offchain.chain.deploy import DEFAULT_ADMIN_ROLE, deploy_all, role
from offchain.params import GPU_CLASSES


def test_deploy__local__deployer_holds_operational_roles(deployment, deployer, registry, market, token):
    for contract in (registry, market):
        assert contract.hasRole(DEFAULT_ADMIN_ROLE, deployer)
        assert contract.hasRole(role("PAUSER_ROLE"), deployer)
    assert registry.hasRole(role("ATTESTER_ROLE"), deployer)
    assert market.hasRole(role("VERIFIER_ROLE"), deployer)
    assert registry.hasRole(role("COLLATERAL_ROLE"), market)
    assert registry.hasRole(role("SLASHER_ROLE"), market)
    assert token.owner() == deployer
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
    assert deployment.emissions.BURNS() == settlement.address
    for c in GPU_CLASSES:
        assert registry.gpu_classes(c.class_id).name == c.name
        assert registry.class_exists(c.class_id)


def test_deploy__production__timelock_holds_admin_and_deployer_keeps_nothing(project, accounts):
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


def test_deploy__production__settlement_and_emissions_stay_the_only_minters_besides_the_timelock(project, accounts):
    """Settlement and Emissions are made minters before the token's ownership moves to the
    timelock, and the move keeps them (snekmate drops only the old owner's minter role).
    Emissions has no admin role; Settlement's admin is the timelock."""
    deployer = accounts[8]
    d = deploy_all(project, deployer, local=False)
    assert d.token.is_minter(d.settlement)
    assert d.token.is_minter(d.emissions)
    assert d.token.is_minter(d.timelock)
    assert not d.token.is_minter(deployer)
    assert d.emissions.HUB() == d.hub.address
    assert d.emissions.TOKEN() == d.token.address
    assert d.emissions.BURNS() == d.settlement.address
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
    assert d.record["constructor_args"]["Emissions"][2] == d.settlement.address
    assert d.record["roles"]["minters"] == [d.settlement.address, d.emissions.address]
