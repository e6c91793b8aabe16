"""Shared fixtures for the ape unit tests (in-process chain; ape snapshots the chain per test).

Actors are role-named: `deployer` (also governance, guardian, attester and verifier on a
local chain), `provider` / `provider2` (stake and run machines), `user` / `user2` (pay for
jobs), `keeper` (finalizes and expires), `attacker` (tries what it should not).

Factories:
- `make_provider(account, stake=..., class_id=..., price=...)` -> machine id, staked,
  registered, Active and offering.
- `make_job(user, provider=..., units=...)` -> (job_id, job dict).
- `set_price(price)`: a new round on the PriceFeed Settlement prices jobs with.
- `jobs` keeps {job_id: job dict} current from receipts (see offchain/chain/jobs.py).
"""

import os
import subprocess
import sys

import pytest
from eth_utils import to_canonical_address

from offchain.chain import jobs as jobs_mod
from offchain.chain.deploy import deploy_all, role
from offchain.chain.price import post_price
from offchain.constants import ONE_TOKEN, MachineStatus
from offchain.params import MarketParams, OracleParams, PriceFeedParams

CPU = 1
H100 = 10
PRICE = 10**15  # 0.001 token per compute unit
UNITS = 1_000  # -> payment 1 token
STAKE = 1_000 * ONE_TOKEN
ACCEPT_WINDOW = 3600
COMPLETE_WITHIN = 3600
# The unit tests of escrow, settlement and disputes run with sampled audits off (p = 0): a
# random draw would otherwise make `finalize` refuse some jobs ("job drawn for audit"), and
# collateral stays at its creation-time floor. tests/test_market_audits.py deploys with audits on.
# Jobs are priced at $1.00 per token in the unit tests, so a job's tokens equal its USD value.
USD_PER_TOKEN = 10**8
SETTLEMENT_MAX_AGE = 7 * 86400
UNIT_PARAMS = MarketParams(base_audit_bps=0, new_provider_audit_bps=0, bad_record_audit_bps=0)


class _BusyCpus:
    """One `while True: pass` process per core from `start()`; `stop()` ends them (also at the
    test's end)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        self.procs += [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []


# Tests that run a whole network of processes (several oracles and agents, or the busy-CPU
# loops): under `make test`'s two xdist workers they run one after another on the same worker,
# so two of them never load the machine at once (the busy-machine attestation is about a
# machine kept busy by its own work, not by a second network).
HEAVY_MODULES = {"test_demo_anvil", "test_oracle_anvil", "test_load_anvil", "test_faults_anvil"}


# The longest groups after "heavy", longest first (seconds of wall time on the 2-core machine, a
# `--durations=0` run of December 2026). xdist hands out groups in collection order
# (`--no-loadscope-reorder`), so the heavy group (~10 min in all) starts at once on one worker
# while the other works through these and the short files; the heavy group sorted by test count,
# as xdist does by default, started a quarter of the way in and left the other worker idle for
# its last ~8 minutes.
LONG_MODULES = (
    "test_onboarding_anvil",  # 170
    "test_provider_jobs_anvil",  # 160
    "test_cli_errors",  # 91
    "test_sim",  # 79
    "test_oracle_verdict_anvil",  # 62
    "test_market_audits",  # 61
    "test_market_lifecycle",  # 59
    "test_oracle_beacon_duty",  # 54
    "test_cli_config",  # 47
    "test_registry",  # 43
    "test_rewards_anvil",  # 40
    "test_provider_agent",  # 34
    "test_deploy_anvil",  # 33
    "test_price_anvil",  # 31
)


def _run_order(item) -> int:
    module = item.path.stem
    if module in HEAVY_MODULES:
        return 0
    return 1 + LONG_MODULES.index(module) if module in LONG_MODULES else 1 + len(LONG_MODULES)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks into the node ids
def pytest_collection_modifyitems(config, items):
    """`--dist loadgroup`: a group per test file (its module fixtures are built once, as with
    loadfile), and one group for all of HEAVY_MODULES; the groups in `_run_order` (a stable sort:
    tests keep their order within a file)."""
    for item in items:
        module = item.path.stem
        item.add_marker(pytest.mark.xdist_group("heavy" if module in HEAVY_MODULES else module))
    items.sort(key=_run_order)


@pytest.fixture(scope="session", autouse=True)
def _client_index_in_tmp(tmp_path_factory):
    """The client's market index (offchain/client/index.py) under the session's temporary
    directory, for this process and every process a test starts, not in the user's cache."""
    os.environ["GPUNET_INDEX_DIR"] = str(tmp_path_factory.mktemp("client-index"))


@pytest.fixture(autouse=True)
def _fresh_senders():
    """Each test's in-process transaction senders start from the chain's nonces: ape's test
    isolation rewinds the chain between tests, which no real chain does (chain/sender.py)."""
    from offchain.chain.sender import Sender

    Sender._by_address.clear()
    yield
    Sender._by_address.clear()


@pytest.fixture
def busy_cpus():
    """Every core kept busy by another process from `busy_cpus.start()` to `busy_cpus.stop()` (or
    the test's end): a provider's machine is never idle, and the hardware rule must hold on a
    busy one (issue: busy honest machines were jailed)."""
    busy = _BusyCpus()
    try:
        yield busy
    finally:
        busy.stop()


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def provider(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def provider2(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def user(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def user2(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def keeper(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def attacker(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def treasury(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def params():
    return UNIT_PARAMS


@pytest.fixture(scope="session")
def deployment(project, chain, accounts, deployer, params, provider, provider2, user, user2, attacker):
    # Settlement accepts a week-old price (its maximum) so that tests that move time by days can
    # still fund jobs; tests/test_settlement.py covers staleness. The token's minters are left
    # unsealed so that unit tests can make minters of their own (a bare Settlement, a fresh
    # Emissions); tests/test_attacks_v2.py seals them and tests/test_deploy.py checks that every
    # real deployment does.
    d = deploy_all(
        project, deployer, local=True, params=params, settlement_max_age=SETTLEMENT_MAX_AGE, seal_minters=False
    )
    post_unit_price(project, d, chain, accounts, deployer)
    for a in (provider, provider2, user, user2, attacker):
        d.token.mint(a, 100_000 * ONE_TOKEN, sender=deployer)
        d.token.approve(d.registry, 2**256 - 1, sender=a)
        d.token.approve(d.market, 2**256 - 1, sender=a)
    return d


def staked_operator(d, accounts, deployer):
    """A fresh account with gas money and OracleHub's minimum stake bonded, made an operator."""
    op = accounts.generate_test_account()
    stake = OracleParams().min_operator_stake
    deployer.transfer(op, 10**18)
    d.token.mint(op, stake, sender=deployer)
    d.token.approve(d.hub, stake, sender=op)
    d.hub.stake(stake, sender=op)
    d.hub.add_operator(op, sender=deployer)
    return op


def wait_round_interval(chain, feed):
    """Mines up to the time `feed` takes its next round (`min_round_interval` after the last)."""
    if feed.latest_round() == 0:
        return
    interval = feed.min_round_interval() if hasattr(feed, "min_round_interval") else 0
    due = feed.latestRoundData()[3] + interval
    if chain.blocks.head.timestamp < due:
        chain.mine(timestamp=due)


def post_as_sole_operator(d, feed, chain, accounts, deployer, price):
    """Posts the next round of `feed` at `price` (USD per token, 8 decimals), signed by a fresh
    staked operator that is then removed. With no other hub operator it is the whole quorum
    (unanimous: PriceFeed's deviation bound does not apply). Returns the receipt."""
    op = staked_operator(d, accounts, deployer)
    wait_round_interval(chain, feed)
    receipt = post_price(feed, chain.chain_id, [op], price, chain.blocks.head.timestamp, deployer)
    d.hub.remove_operator(op, sender=deployer)
    return receipt


def post_unit_price(project, d, chain, accounts, deployer, price=USD_PER_TOKEN):
    """Points Settlement at its own real PriceFeed (same hub, default guards) holding one round at
    `price`, which pushes its later rounds to Settlement. `deployment.price_feed` stays without
    rounds for tests/test_price_feed.py; the feed Settlement reads (`settlement.price_feed()`) is
    the one jobs are priced on."""
    feed = deployer.deploy(project.PriceFeed, d.hub.address, *PriceFeedParams().as_tuple())
    post_as_sole_operator(d, feed, chain, accounts, deployer, price)
    d.settlement.set_price_feed(feed, SETTLEMENT_MAX_AGE, sender=deployer)
    # As deploy_all wires its own feed: later rounds are pushed to Settlement's quote.
    feed.set_listener(d.settlement, sender=deployer)
    return feed


@pytest.fixture
def set_price(project, deployment, chain, accounts, deployer):
    """set_price(price): a new round at `price` (USD per token, 8 decimals) on the feed Settlement
    reads, by `post_as_sole_operator` (so only while the hub has no other operators)."""

    def _set(price):
        feed = project.PriceFeed.at(deployment.settlement.price_feed())
        receipt = post_as_sole_operator(deployment, feed, chain, accounts, deployer, price)
        assert deployment.settlement.price() == price
        return receipt

    return _set


@pytest.fixture(scope="session")
def token(deployment):
    return deployment.token


@pytest.fixture(scope="session")
def registry(deployment):
    return deployment.registry


@pytest.fixture(scope="session")
def market(deployment):
    return deployment.market


@pytest.fixture(scope="session")
def params_check(project, deployment):
    """The JobMarketParams deploy_all deployed (the session market checks its parameters with it)."""
    return project.JobMarketParams.at(deployment.record["contracts"]["JobMarketParams"])


@pytest.fixture(scope="session")
def roles():
    return {
        name: role(name)
        for name in ("ATTESTER_ROLE", "COLLATERAL_ROLE", "SLASHER_ROLE", "PAUSER_ROLE", "VERIFIER_ROLE")
    }


@pytest.fixture
def make_provider(registry, deployer):
    def _make(account, stake=STAKE, class_id=CPU, price=PRICE, gpus=1, vram_mb=16_384, activate=True):
        if stake:
            registry.stake(stake, sender=account)
        tx = registry.register(class_id, gpus, vram_mb, f"http://127.0.0.1:9000/{account.address}", sender=account)
        machine_id = tx.decode_logs(registry.MachineRegistered)[0].machine_id
        if activate:
            registry.set_machine_status(machine_id, int(MachineStatus.ACTIVE), sender=deployer)
        if price:
            registry.set_offer(class_id, price, sender=account)
        return machine_id

    return _make


class JobTracker(dict):
    """{job_id: job dict}, updated from receipts so tests always pass the current struct."""

    def __init__(self, market):
        super().__init__()
        self.market = market

    def track(self, receipt):
        for job_id, job in jobs_mod.jobs_from_receipt(self.market, receipt):
            self[job_id] = job
        jobs_mod.update_from_receipt(self.market, self, receipt)
        return receipt

    def t(self, job_id):
        return jobs_mod.as_tuple(self[job_id])


@pytest.fixture
def jobs(market):
    return JobTracker(market)


@pytest.fixture
def make_job(market, jobs, provider):
    def _make(
        user,
        target=None,
        class_id=CPU,
        units=UNITS,
        max_price=PRICE,
        accept_window=ACCEPT_WINDOW,
        complete_within=COMPLETE_WITHIN,
        spec_hash=b"\x11" * 32,
        max_tokens=2**256 - 1,
    ):
        target_addr = "0x" + "00" * 20 if target is False else (target or provider).address
        tx = jobs.track(
            market.create_job(
                target_addr,
                class_id,
                spec_hash,
                units,
                max_price,
                accept_window,
                complete_within,
                max_tokens,
                sender=user,
            )
        )
        job_id = tx.decode_logs(market.JobCreated)[0].job_id
        return job_id, jobs[job_id]

    return _make


@pytest.fixture
def running_job(make_provider, make_job, market, jobs, provider, user):
    """A job accepted by `provider` on an Active CPU machine: (job_id, machine_id)."""
    machine_id = make_provider(provider)
    job_id, _ = make_job(user)
    jobs.track(market.accept(job_id, jobs.t(job_id), machine_id, sender=provider))
    return job_id, machine_id


@pytest.fixture
def submitted_job(running_job, market, jobs, provider):
    job_id, machine_id = running_job
    jobs.track(market.submit_result(job_id, jobs.t(job_id), b"\x22" * 32, "http://p/result", sender=provider))
    return job_id, machine_id


def storage_roots(chain, contracts):
    """Storage roots of `contracts` (in-process chain): equal roots mean not one slot changed."""
    state = chain.provider.evm_backend.chain.get_vm().state
    return [state._account_db._get_storage_root(to_canonical_address(c.address)) for c in contracts]


@pytest.fixture(scope="module")
def pool(request, accounts, deployment, deployer):
    """`N_POOL` (a constant of the test module, default 9) funded accounts sorted by address,
    each with OracleHub's minimum operator stake bonded; `hub` makes the first three operators."""
    hub, token = deployment.hub, deployment.token
    stake = OracleParams().min_operator_stake
    out = []
    for _ in range(getattr(request.module, "N_POOL", 9)):
        a = accounts.generate_test_account()
        deployer.transfer(a, 10 * 10**18)
        token.mint(a, 10 * stake, sender=deployer)
        token.approve(hub, 2**256 - 1, sender=a)
        hub.stake(stake, sender=a)
        out.append(a)
    return sorted(out, key=lambda a: int(a.address, 16))


@pytest.fixture(scope="module")
def hub(deployment, pool, deployer):
    """The deployed hub with pool[0..2] as operators and threshold 2."""
    h = deployment.hub
    for a in pool[:3]:
        h.add_operator(a, sender=deployer)
    h.set_threshold(2, sender=deployer)
    return h
