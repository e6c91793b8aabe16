"""ProviderRegistry: GPU classes, machines, staking/unbonding, offers, collateral, reputation,
slashing, pause.

Every external function gets a positive test (state + decoded events) and negative tests with
the exact revert string and a check that nothing changed (the `reverts` fixture compares the
storage roots of registry, token and market before and after).

The registry is tested on its own: this module overrides the `registry` fixture with a fresh
ProviderRegistry (on the session token, wired as deploy_all wires its own) whose set-once job
market is a plain test account (`locker`), and SLASHER_ROLE goes to another (`slasher`).
conftest's `make_provider` and the other fixtures then use that registry. The session
deployment's registry (`deployment.registry`, whose job market is the real JobMarket) is only
read for its wiring.
"""

from contextlib import contextmanager

import ape
import pytest
from conftest import storage_roots

from offchain.chain.deploy import DEFAULT_ADMIN_ROLE, role
from offchain.constants import MAX_BATCH, MAX_BPS, ONE_TOKEN, JobStatus, MachineStatus
from offchain.params import GPU_CLASSES, UNBONDING_PERIOD_SECONDS

ZERO = "0x" + "00" * 20
CPU = 1  # 10 tokens per GPU
H100 = 10  # 300 tokens per GPU
CPU_MIN = 10 * ONE_TOKEN
H100_MIN = 300 * ONE_TOKEN
STAKE = 1_000 * ONE_TOKEN
PERIOD = UNBONDING_PERIOD_SECONDS
MIN_PERIOD = 3600
MAX_PERIOD = 60 * 86400
ENDPOINT = "http://10.0.0.1:9000"
REASON = b"\x5a" * 32

PENDING = int(MachineStatus.PENDING)
ACTIVE = int(MachineStatus.ACTIVE)
JAILED = int(MachineStatus.JAILED)
EXITED = int(MachineStatus.EXITED)
NO_EXPIRY = 2**32 - 1  # attested_until of a machine activated by hand
VRAM_MAX = 2**24 - 1  # vram_mb is packed in 24 bits
NOT_MARKET = "registry: caller is not the job market"
MISSING_ROLE = "access_control: account is missing role"
# Reputation counters: 40 bits each, packed in `Reputation`'s field order from bit 0.
REP_FIELDS = ("completed", "failed", "expired", "audits_passed", "disputes_won", "disputes_lost")
REP_SHIFT = dict(zip(REP_FIELDS, range(0, 240, 40), strict=True))
MAX_UINT = 2**256 - 1


def _record(**counts):
    """Packed reputation increments, as JobMarket sends them to unlock_collateral."""
    return sum(n << REP_SHIFT[name] for name, n in counts.items())


def _args(log):
    # `provider` clashes with ContractLog.provider: always read event fields this way.
    return log.event_arguments


def _one(tx, event):
    logs = tx.decode_logs(event)
    assert len(logs) == 1, logs
    return _args(logs[0])


@pytest.fixture
def reverts(chain, registry, token, market):
    """`ape.reverts(message)` that also proves the revert left every contract's storage untouched."""

    @contextmanager
    def _reverts(message):
        before = storage_roots(chain, (registry, token, market))
        with ape.reverts(message):
            yield
        assert storage_roots(chain, (registry, token, market)) == before

    return _reverts


@pytest.fixture(scope="module")
def locker(accounts):
    """A plain account: the fresh registry's job market (what JobMarket is in a deployment)."""
    return accounts[8]


@pytest.fixture(scope="module")
def slasher(accounts):
    """A plain account holding SLASHER_ROLE on the fresh registry (what OracleHub holds)."""
    return accounts[9]


def _fresh_registry(project, token, deployer, job_market=None):
    """A ProviderRegistry on the session token with deploy_all's GPU classes, PAUSER_ROLE and
    ATTESTER_ROLE for the deployer, and `job_market` set (unless None)."""
    r = deployer.deploy(project.ProviderRegistry, token.address, PERIOD)
    for c in GPU_CLASSES:
        r.set_gpu_class(c.class_id, c.name, c.min_stake_tokens * ONE_TOKEN, True, sender=deployer)
    r.grantRole(role("PAUSER_ROLE"), deployer, sender=deployer)
    r.grantRole(role("ATTESTER_ROLE"), deployer, sender=deployer)
    if job_market is not None:
        r.set_job_market(job_market, sender=deployer)
    return r


@pytest.fixture(scope="module")
def registry(
    project,
    deployment,
    token,
    deployer,
    locker,
    slasher,
    provider,
    provider2,
    user,
    user2,
    attacker,
    keeper,
    treasury,
    roles,
):
    """Overrides conftest's: a fresh registry whose job market is `locker`, SLASHER_ROLE held by
    `slasher`, and the funded accounts' allowances set as conftest sets them for the session one.
    (`keeper`, `treasury` and `roles` are requested here only so that these session fixtures are
    set up before the first test: ape's chain isolation expects wider scopes first.)"""
    r = _fresh_registry(project, token, deployer, job_market=locker)
    r.grantRole(role("SLASHER_ROLE"), slasher, sender=deployer)
    for a in (provider, provider2, user, user2, attacker):
        token.approve(r, MAX_UINT, sender=a)
    return r


@pytest.fixture
def actors(deployer, provider, attacker, keeper, locker, slasher):
    """Callers by name, for role tests parametrized over who calls."""
    return {
        "deployer": deployer,
        "provider": provider,
        "attacker": attacker,
        "keeper": keeper,
        "locker": locker,
        "slasher": slasher,
    }


@pytest.fixture
def register(registry):
    def _register(account, class_id=CPU, gpus=1, vram_mb=16_384, endpoint=ENDPOINT):
        tx = registry.register(class_id, gpus, vram_mb, endpoint, sender=account)
        return tx.decode_logs(registry.MachineRegistered)[0].machine_id

    return _register


@pytest.fixture
def active_machine(make_provider, provider):
    """`provider` staked STAKE with one Active 1-GPU CPU machine: its id."""
    return make_provider(provider, price=0)


def test_reverts_helper__storage_change__detected(chain, registry, token, market, provider):
    """The no-state-change check is not vacuous: a successful call changes the roots."""
    before = storage_roots(chain, (registry, token, market))
    registry.stake(1, sender=provider)
    after = storage_roots(chain, (registry, token, market))
    assert after[0] != before[0] and after[1] != before[1] and after[2] == before[2]


################################################################
#               Python mirrors and deployment wiring           #
################################################################


def test_constants__machine_status__match_python_mirror(registry):
    on_chain = {
        "NONE": registry.STATUS_NONE(),
        "PENDING": registry.STATUS_PENDING(),
        "ACTIVE": registry.STATUS_ACTIVE(),
        "JAILED": registry.STATUS_JAILED(),
        "EXITED": registry.STATUS_EXITED(),
    }
    assert on_chain == {s.name: s.value for s in MachineStatus}


def test_constants__job_status__not_exported_by_the_market__clients_use_the_mirror(market):
    # JobMarket exports neither the status constants nor the window bounds (code size): clients
    # read them from offchain.constants.JobStatus (checked against job_store.vy's declarations
    # in tests/test_market_lifecycle.py) and JobMarketParams.
    views = {abi.name for abi in market.contract_type.view_methods}
    assert not {name for name in views if name.startswith("STATUS_")}
    assert not {"MIN_WINDOW_SECONDS", "MAX_WINDOW_SECONDS"} & views
    # A job id never used reads as the mirror's NONE.
    assert market.job_status(market.job_count() + 1) == JobStatus.NONE


def test_constants__max_bps_and_batch__match_python_mirror(market):
    assert market.MAX_BPS() == MAX_BPS
    assert market.MAX_BATCH() == MAX_BATCH


def test_constants__roles_and_bounds(registry, roles):
    for name in ("ATTESTER_ROLE", "SLASHER_ROLE", "PAUSER_ROLE"):
        assert bytes(getattr(registry, name)()) == roles[name]
    # The job market's rights are a set-once address, not a role.
    assert not hasattr(registry, "COLLATERAL_ROLE")
    assert bytes(registry.DEFAULT_ADMIN_ROLE()) == DEFAULT_ADMIN_ROLE
    assert registry.MAX_GPUS_PER_MACHINE() == 64
    assert registry.NO_EXPIRY() == NO_EXPIRY
    assert registry.MIN_UNBONDING_SECONDS() == MIN_PERIOD
    assert registry.MAX_UNBONDING_SECONDS() == MAX_PERIOD


def test_deployment__local__wired_as_documented(deployment, token, market, deployer, roles):
    registry = deployment.registry
    assert registry.TOKEN() == token.address
    assert registry.unbonding_period() == PERIOD
    assert registry.machine_count() == 0
    assert not registry.paused()
    for c in GPU_CLASSES:
        assert tuple(registry.gpu_classes(c.class_id)) == (c.name, c.min_stake_tokens * ONE_TOKEN, True)
    # The market is the set-once job market; it holds no role (slashing included).
    assert registry.job_market() == market.address
    assert market.REGISTRY() == registry.address
    assert not registry.hasRole(roles["COLLATERAL_ROLE"], market)
    assert not registry.hasRole(roles["SLASHER_ROLE"], market)
    assert registry.hasRole(roles["SLASHER_ROLE"], deployment.hub)
    for r in (DEFAULT_ADMIN_ROLE, roles["PAUSER_ROLE"], roles["ATTESTER_ROLE"]):
        assert registry.hasRole(r, deployer)
    assert not registry.hasRole(roles["SLASHER_ROLE"], deployer)


def test_fixture_registry__wired_like_the_deployment_but_locker_is_the_market(
    registry, deployment, token, deployer, locker, slasher, roles
):
    session = deployment.registry
    assert registry.address != session.address
    assert registry.TOKEN() == token.address
    assert registry.unbonding_period() == session.unbonding_period()
    for c in GPU_CLASSES:
        assert tuple(registry.gpu_classes(c.class_id)) == tuple(session.gpu_classes(c.class_id))
    assert registry.job_market() == locker.address
    assert registry.hasRole(roles["SLASHER_ROLE"], slasher)
    assert not registry.hasRole(roles["SLASHER_ROLE"], locker)
    for r in (DEFAULT_ADMIN_ROLE, roles["PAUSER_ROLE"], roles["ATTESTER_ROLE"]):
        assert registry.hasRole(r, deployer)


def test_constructor__zero_token__reverts(reverts, project, deployer):
    with reverts("registry: token is the zero address"):
        deployer.deploy(project.ProviderRegistry, ZERO, PERIOD)


@pytest.mark.parametrize(
    "period,message",
    [(MIN_PERIOD - 1, "registry: unbonding period too short"), (MAX_PERIOD + 1, "registry: unbonding period too long")],
)
def test_constructor__period_out_of_bounds__reverts(reverts, project, deployer, token, period, message):
    with reverts(message):
        deployer.deploy(project.ProviderRegistry, token.address, period)


def test_grant_role__not_admin__reverts(reverts, registry, roles, attacker):
    with reverts("access_control: account is missing role"):
        registry.grantRole(roles["SLASHER_ROLE"], attacker, sender=attacker)
    assert not registry.hasRole(roles["SLASHER_ROLE"], attacker)


################################################################
#                          set_job_market                      #
################################################################


def test_set_job_market__admin__sets_once_with_event(project, token, deployer, locker):
    r = _fresh_registry(project, token, deployer)
    assert r.job_market() == ZERO
    tx = r.set_job_market(locker, sender=deployer)
    assert _one(tx, r.JobMarketSet) == {"job_market": locker.address}
    assert r.job_market() == locker.address


def test_set_job_market__already_set__reverts(chain, registry, token, deployment, deployer, locker, attacker, market):
    # Neither the fixture registry nor the deployed one can have its market replaced, not even by
    # the admin and not even with the same address or the zero address.
    contracts = (registry, deployment.registry, token, market)
    before = storage_roots(chain, contracts)
    for r, current in ((registry, locker.address), (deployment.registry, market.address)):
        for new in (attacker.address, current, ZERO):
            with ape.reverts("registry: job market already set"):
                r.set_job_market(new, sender=deployer)
        assert r.job_market() == current
    assert storage_roots(chain, contracts) == before


def test_set_job_market__zero_address__reverts(project, chain, token, deployer, locker):
    r = _fresh_registry(project, token, deployer)
    before = storage_roots(chain, (r, token))
    with ape.reverts("registry: job market is the zero address"):
        r.set_job_market(ZERO, sender=deployer)
    assert storage_roots(chain, (r, token)) == before
    assert r.job_market() == ZERO
    r.set_job_market(locker, sender=deployer)  # still settable afterwards
    assert r.job_market() == locker.address


@pytest.mark.parametrize("who", ["attacker", "locker", "slasher", "provider"])
def test_set_job_market__not_admin__reverts(project, chain, token, deployer, actors, who):
    r = _fresh_registry(project, token, deployer)
    r.grantRole(role("SLASHER_ROLE"), actors["slasher"], sender=deployer)
    caller = actors[who]
    before = storage_roots(chain, (r, token))
    with ape.reverts(MISSING_ROLE):
        r.set_job_market(caller, sender=caller)
    assert storage_roots(chain, (r, token)) == before
    assert r.job_market() == ZERO


def test_set_job_market__admin_renounced__market_keeps_its_rights(registry, deployer, provider, locker, active_machine):
    """Set once, not a role: no admin action (not even giving up the admin role) takes it back."""
    registry.renounceRole(DEFAULT_ADMIN_ROLE, deployer, sender=deployer)
    with ape.reverts(MISSING_ROLE):
        registry.set_job_market(deployer, sender=deployer)
    assert registry.job_market() == locker.address
    registry.lock_collateral(provider, active_machine, CPU, 1, sender=locker)
    registry.unlock_collateral(provider, 1, _record(completed=1), sender=locker)
    assert registry.locked(provider) == 0
    assert registry.reputation(provider).completed == 1


################################################################
#                             register                         #
################################################################


def test_register__valid__creates_pending_machine_and_requirement(registry, token, provider):
    assert registry.register.call(H100, 8, 81_920, ENDPOINT, sender=provider) == 1
    tx = registry.register(H100, 8, 81_920, ENDPOINT, sender=provider)
    assert _one(tx, registry.MachineRegistered) == {
        "machine_id": 1,
        "provider": provider.address,
        "class_id": H100,
        "gpu_count": 8,
        "vram_mb": 81_920,
        "endpoint": ENDPOINT,
    }
    assert _one(tx, registry.MachineStatusChanged) == {
        "machine_id": 1,
        "provider": provider.address,
        "old_status": MachineStatus.NONE,
        "new_status": MachineStatus.PENDING,
    }
    assert registry.machine_count() == 1
    assert tuple(registry.machines(1)) == (provider.address, H100, 8, 81_920, PENDING, ENDPOINT, 0)
    assert registry.required_stake(provider) == 8 * H100_MIN
    # Registration needs no stake and moves no tokens.
    assert registry.staked(provider) == 0
    assert token.balanceOf(registry) == 0


def test_register__second_machine__next_id_and_requirement_adds(registry, provider, provider2, register):
    first = register(provider, H100, 2)
    other = register(provider2, CPU, 1)
    second = register(provider, CPU, 4)
    assert (first, other, second) == (1, 2, 3)
    assert registry.machine_count() == 3
    assert registry.required_stake(provider) == 2 * H100_MIN + 4 * CPU_MIN
    assert registry.required_stake(provider2) == CPU_MIN
    assert registry.machine_provider(other) == provider2.address


def test_register__max_gpus__accepted(registry, provider, register):
    mid = register(provider, CPU, 64)
    assert registry.machines(mid).gpu_count == 64
    assert registry.required_stake(provider) == 64 * CPU_MIN


@pytest.mark.parametrize(
    "class_id,gpus,vram,endpoint,message",
    [
        (0, 1, 1, ENDPOINT, "registry: unknown or disabled class"),
        (99, 1, 1, ENDPOINT, "registry: unknown or disabled class"),
        (CPU, 0, 1, ENDPOINT, "registry: gpu count is zero"),
        (CPU, 65, 1, ENDPOINT, "registry: gpu count too large"),
        (CPU, 1, 0, ENDPOINT, "registry: vram is zero"),
        (CPU, 1, VRAM_MAX + 1, ENDPOINT, "registry: vram too large"),
        (CPU, 1, 2**32 - 1, ENDPOINT, "registry: vram too large"),
        (CPU, 1, 1, "", "registry: endpoint is empty"),
    ],
    ids=[
        "class_zero",
        "unknown_class",
        "gpus_zero",
        "gpus_65",
        "vram_zero",
        "vram_2_24",
        "vram_uint32_max",
        "empty_endpoint",
    ],
)
def test_register__invalid_args__reverts(reverts, registry, provider, class_id, gpus, vram, endpoint, message):
    with reverts(message):
        registry.register(class_id, gpus, vram, endpoint, sender=provider)


def test_register__disabled_class__reverts(reverts, registry, deployer, provider):
    registry.set_gpu_class(H100, "H100 SXM5", H100_MIN, False, sender=deployer)
    with reverts("registry: unknown or disabled class"):
        registry.register(H100, 1, 1, ENDPOINT, sender=provider)


def test_register__paused__reverts_until_unpaused(reverts, registry, deployer, provider, register):
    registry.pause(sender=deployer)
    with reverts("pausable: contract is paused"):
        registry.register(CPU, 1, 1, ENDPOINT, sender=provider)
    registry.unpause(sender=deployer)
    assert register(provider) == 1


################################################################
#                          update_endpoint                     #
################################################################


@pytest.mark.parametrize("status", [PENDING, ACTIVE, JAILED])
def test_update_endpoint__own_machine__updates(registry, deployer, provider, register, status):
    mid = register(provider)
    if status != PENDING:
        registry.set_machine_status(mid, status, sender=deployer)
    tx = registry.update_endpoint(mid, "https://new.example:443", sender=provider)
    assert _one(tx, registry.EndpointUpdated) == {"machine_id": mid, "endpoint": "https://new.example:443"}
    assert registry.machine_endpoint(mid) == "https://new.example:443"
    attested = NO_EXPIRY if status == ACTIVE else 0
    assert tuple(registry.machines(mid)) == (
        provider.address,
        CPU,
        1,
        16_384,
        status,
        "https://new.example:443",
        attested,
    )


@pytest.mark.parametrize("machine_id", [0, 2, 99])
def test_update_endpoint__unknown_machine__reverts(reverts, registry, provider, register, machine_id):
    register(provider)
    with reverts("registry: unknown machine"):
        registry.update_endpoint(machine_id, "x", sender=provider)


def test_update_endpoint__not_provider__reverts(reverts, registry, provider, attacker, register):
    mid = register(provider)
    with reverts("registry: not the machine's provider"):
        registry.update_endpoint(mid, "http://evil", sender=attacker)


def test_update_endpoint__exited__reverts(reverts, registry, provider, register):
    mid = register(provider)
    registry.exit_machine(mid, sender=provider)
    with reverts("registry: machine exited"):
        registry.update_endpoint(mid, "http://new", sender=provider)


def test_update_endpoint__empty__reverts(reverts, registry, provider, register):
    mid = register(provider)
    with reverts("registry: endpoint is empty"):
        registry.update_endpoint(mid, "", sender=provider)


################################################################
#                           exit_machine                       #
################################################################


@pytest.mark.parametrize("status", [PENDING, ACTIVE, JAILED])
def test_exit_machine__from_each_status__exits_and_releases_requirement(registry, deployer, provider, register, status):
    keep = register(provider, CPU, 2)
    mid = register(provider, H100, 4)
    if status != PENDING:
        registry.set_machine_status(mid, status, sender=deployer)
    assert registry.required_stake(provider) == 2 * CPU_MIN + 4 * H100_MIN
    tx = registry.exit_machine(mid, sender=provider)
    assert _one(tx, registry.MachineStatusChanged) == {
        "machine_id": mid,
        "provider": provider.address,
        "old_status": status,
        "new_status": EXITED,
    }
    assert registry.machine_status(mid) == EXITED
    # Everything else about the machine is kept for the record (attested_until included: an
    # Exited machine fails lock_collateral's status check before the expiry is looked at).
    attested = NO_EXPIRY if status == ACTIVE else 0
    assert tuple(registry.machines(mid)) == (provider.address, H100, 4, 16_384, EXITED, ENDPOINT, attested)
    assert registry.required_stake(provider) == 2 * CPU_MIN
    assert registry.machine_status(keep) == PENDING


def test_exit_machine__class_minimum_raised__requirement_floors_at_zero(registry, deployer, provider, register):
    mid = register(provider, CPU, 2)
    assert registry.required_stake(provider) == 2 * CPU_MIN
    registry.set_gpu_class(CPU, "CPU", 5 * CPU_MIN, True, sender=deployer)
    registry.exit_machine(mid, sender=provider)  # 5x the recorded requirement: must not underflow
    assert registry.required_stake(provider) == 0


def test_exit_machine__class_minimum_changed__releases_what_registration_added(registry, deployer, provider, register):
    """The requirement is fixed per machine at registration: a later class change does not skew it."""
    a = register(provider, CPU, 1)
    assert registry.machine_requirement(a) == CPU_MIN
    b = register(provider, CPU, 1)
    registry.set_gpu_class(CPU, "CPU", 3 * CPU_MIN // 2, True, sender=deployer)
    registry.exit_machine(a, sender=provider)
    assert registry.required_stake(provider) == CPU_MIN  # the remaining machine, at its own minimum
    registry.set_gpu_class(CPU, "CPU", CPU_MIN // 4, True, sender=deployer)
    registry.exit_machine(b, sender=provider)
    assert registry.required_stake(provider) == 0


@pytest.mark.parametrize("machine_id", [0, 99])
def test_exit_machine__unknown__reverts(reverts, registry, provider, register, machine_id):
    register(provider)
    with reverts("registry: unknown machine"):
        registry.exit_machine(machine_id, sender=provider)


def test_exit_machine__not_provider__reverts(reverts, registry, provider, attacker, register):
    mid = register(provider)
    with reverts("registry: not the machine's provider"):
        registry.exit_machine(mid, sender=attacker)


def test_exit_machine__twice__reverts(reverts, registry, provider, register):
    register(provider, CPU, 3)
    mid = register(provider)
    registry.exit_machine(mid, sender=provider)
    with reverts("registry: machine exited"):
        registry.exit_machine(mid, sender=provider)
    assert registry.required_stake(provider) == 3 * CPU_MIN


################################################################
#                               stake                          #
################################################################


def test_stake__first_and_second__bonds_and_moves_tokens(registry, token, provider):
    bal = token.balanceOf(provider)
    tx = registry.stake(STAKE, sender=provider)
    assert _one(tx, registry.Staked) == {"provider": provider.address, "amount": STAKE, "staked": STAKE}
    tx = registry.stake(5, sender=provider)
    assert _one(tx, registry.Staked) == {"provider": provider.address, "amount": 5, "staked": STAKE + 5}
    assert tuple(registry.stakes(provider)) == (STAKE + 5, 0, 0, 0)
    assert registry.staked(provider) == STAKE + 5
    assert registry.free_stake(provider) == STAKE + 5
    assert registry.slashable(provider) == STAKE + 5
    assert token.balanceOf(provider) == bal - STAKE - 5
    assert token.balanceOf(registry) == STAKE + 5


def test_stake__zero__reverts(reverts, registry, provider):
    with reverts("registry: amount is zero"):
        registry.stake(0, sender=provider)


def test_stake__no_allowance__reverts(reverts, registry, token, deployer, keeper):
    token.mint(keeper, STAKE, sender=deployer)  # funded, never approved the registry
    with reverts("erc20: insufficient allowance"):
        registry.stake(STAKE, sender=keeper)


def test_stake__exceeds_balance__reverts(reverts, registry, token, provider):
    with reverts("erc20: transfer amount exceeds balance"):
        registry.stake(token.balanceOf(provider) + 1, sender=provider)


def test_stake__largest_possible__fits_the_128_bit_bond(registry, token, deployer, keeper):
    """The bond packs `staked` and `locked` in 128 bits each, guarded by "registry: amount too
    large". ComputeToken's counters keep every token ever minted below 2**128, so the guard
    cannot be reached through it: the largest stake the token allows round-trips exactly."""
    most = 2**128 - 1 - token.total_minted()
    with ape.reverts("compute_token: counter overflow"):
        token.mint(keeper, most + 1, sender=deployer)
    token.mint(keeper, most, sender=deployer)
    token.approve(registry, 2**256 - 1, sender=keeper)
    registry.stake(most - 1, sender=keeper)
    registry.stake(1, sender=keeper)
    assert registry.staked(keeper) == registry.slashable(keeper) == most
    assert registry.locked(keeper) == 0


################################################################
#                          request_unstake                     #
################################################################


def test_request_unstake__free_stake__moves_to_unbonding(registry, token, provider):
    registry.stake(STAKE, sender=provider)
    tx = registry.request_unstake(400 * ONE_TOKEN, sender=provider)
    release = tx.timestamp + PERIOD
    assert _one(tx, registry.UnstakeRequested) == {
        "provider": provider.address,
        "amount": 400 * ONE_TOKEN,
        "unbonding": 400 * ONE_TOKEN,
        "release_time": release,
    }
    assert tuple(registry.stakes(provider)) == (600 * ONE_TOKEN, 0, 400 * ONE_TOKEN, release)
    assert registry.unbonding(provider) == 400 * ONE_TOKEN
    assert registry.unbonding_release(provider) == release
    assert registry.free_stake(provider) == 600 * ONE_TOKEN
    # Unbonding stake stays slashable and stays in the registry.
    assert registry.slashable(provider) == STAKE
    assert token.balanceOf(registry) == STAKE


def test_request_unstake__all_free_stake__allowed(registry, provider):
    registry.stake(STAKE, sender=provider)
    registry.request_unstake(STAKE, sender=provider)
    assert tuple(registry.stakes(provider))[:3] == (0, 0, STAKE)


def test_request_unstake__second_request__adds_and_restarts_clock(reverts, registry, chain, provider):
    registry.stake(STAKE, sender=provider)
    first = registry.request_unstake(100 * ONE_TOKEN, sender=provider)
    release1 = first.timestamp + PERIOD
    chain.pending_timestamp = first.timestamp + 5000
    second = registry.request_unstake(50 * ONE_TOKEN, sender=provider)
    release2 = second.timestamp + PERIOD
    assert release2 == release1 + 5000
    assert _one(second, registry.UnstakeRequested) == {
        "provider": provider.address,
        "amount": 50 * ONE_TOKEN,
        "unbonding": 150 * ONE_TOKEN,
        "release_time": release2,
    }
    assert tuple(registry.stakes(provider)) == (850 * ONE_TOKEN, 0, 150 * ONE_TOKEN, release2)
    # The first part is no longer withdrawable at its original release time.
    chain.pending_timestamp = release1
    with reverts("registry: still unbonding"):
        registry.withdraw(sender=provider)
    chain.pending_timestamp = release2
    tx = registry.withdraw(sender=provider)
    assert _one(tx, registry.Withdrawn)["amount"] == 150 * ONE_TOKEN


def test_request_unstake__locked_stake__cannot_be_unstaked(reverts, registry, provider, locker, active_machine):
    registry.lock_collateral(provider, active_machine, CPU, 600 * ONE_TOKEN, sender=locker)
    with reverts("registry: not enough free stake"):
        registry.request_unstake(400 * ONE_TOKEN + 1, sender=provider)
    registry.request_unstake(400 * ONE_TOKEN, sender=provider)
    assert tuple(registry.stakes(provider))[:3] == (600 * ONE_TOKEN, 600 * ONE_TOKEN, 400 * ONE_TOKEN)
    assert registry.free_stake(provider) == 0
    with reverts("registry: not enough free stake"):
        registry.request_unstake(1, sender=provider)


def test_request_unstake__zero__reverts(reverts, registry, provider):
    registry.stake(STAKE, sender=provider)
    with reverts("registry: amount is zero"):
        registry.request_unstake(0, sender=provider)


def test_request_unstake__more_than_staked__reverts(reverts, registry, provider, attacker):
    registry.stake(STAKE, sender=provider)
    with reverts("registry: not enough free stake"):
        registry.request_unstake(STAKE + 1, sender=provider)
    with reverts("registry: not enough free stake"):
        registry.request_unstake(1, sender=attacker)  # never staked


def test_request_unstake__period_changed__applies_to_later_requests_only(registry, deployer, provider):
    registry.stake(STAKE, sender=provider)
    tx = registry.request_unstake(1, sender=provider)
    registry.set_unbonding_period(MIN_PERIOD, sender=deployer)
    assert registry.unbonding_release(provider) == tx.timestamp + PERIOD
    tx = registry.request_unstake(1, sender=provider)
    assert registry.unbonding_release(provider) == tx.timestamp + MIN_PERIOD


################################################################
#                              withdraw                        #
################################################################


def test_withdraw__exactly_at_release__pays_out(reverts, registry, token, chain, provider):
    registry.stake(STAKE, sender=provider)
    release = registry.request_unstake(300 * ONE_TOKEN, sender=provider).timestamp + PERIOD
    bal = token.balanceOf(provider)
    chain.pending_timestamp = release - 1
    with reverts("registry: still unbonding"):
        registry.withdraw(sender=provider)
    assert registry.unbonding(provider) == 300 * ONE_TOKEN
    assert token.balanceOf(provider) == bal
    chain.pending_timestamp = release
    tx = registry.withdraw(sender=provider)
    assert tx.timestamp == release
    assert _one(tx, registry.Withdrawn) == {"provider": provider.address, "amount": 300 * ONE_TOKEN}
    assert token.balanceOf(provider) == bal + 300 * ONE_TOKEN
    assert token.balanceOf(registry) == 700 * ONE_TOKEN
    assert tuple(registry.stakes(provider)) == (700 * ONE_TOKEN, 0, 0, 0)
    assert registry.slashable(provider) == 700 * ONE_TOKEN


def test_withdraw__return_value__is_amount_paid(registry, chain, provider):
    registry.stake(STAKE, sender=provider)
    release = registry.request_unstake(123, sender=provider).timestamp + PERIOD
    chain.mine(timestamp=release + 10)
    assert registry.withdraw.call(sender=provider) == 123


def test_withdraw__still_unbonding__reverts(reverts, registry, provider):
    registry.stake(STAKE, sender=provider)
    registry.request_unstake(STAKE, sender=provider)
    with reverts("registry: still unbonding"):
        registry.withdraw(sender=provider)


def test_withdraw__nothing_unbonding__reverts(reverts, registry, provider):
    registry.stake(STAKE, sender=provider)
    with reverts("registry: nothing unbonding"):
        registry.withdraw(sender=provider)


def test_withdraw__twice__second_reverts(reverts, registry, chain, provider):
    registry.stake(STAKE, sender=provider)
    release = registry.request_unstake(1, sender=provider).timestamp + PERIOD
    chain.pending_timestamp = release
    registry.withdraw(sender=provider)
    with reverts("registry: nothing unbonding"):
        registry.withdraw(sender=provider)


################################################################
#                              set_offer                       #
################################################################


def test_set_offer__enabled_class__posts_and_withdraws(registry, provider):
    tx = registry.set_offer(H100, 7 * 10**15, sender=provider)
    assert _one(tx, registry.OfferSet) == {"provider": provider.address, "class_id": H100, "price_per_unit": 7 * 10**15}
    assert registry.offers(provider, H100) == 7 * 10**15
    assert registry.offers(provider, CPU) == 0
    tx = registry.set_offer(H100, 0, sender=provider)
    assert _one(tx, registry.OfferSet) == {"provider": provider.address, "class_id": H100, "price_per_unit": 0}
    assert registry.offers(provider, H100) == 0


def test_set_offer__zero_price_on_disabled_class__withdraws(registry, deployer, provider):
    registry.set_offer(H100, 5, sender=provider)
    registry.set_gpu_class(H100, "H100 SXM5", H100_MIN, False, sender=deployer)
    registry.set_offer(H100, 0, sender=provider)
    assert registry.offers(provider, H100) == 0


@pytest.mark.parametrize("class_id", [0, 99])
def test_set_offer__unknown_class__reverts(reverts, registry, provider, class_id):
    with reverts("registry: unknown or disabled class"):
        registry.set_offer(class_id, 1, sender=provider)


def test_set_offer__disabled_class__reverts(reverts, registry, deployer, provider):
    registry.set_gpu_class(H100, "H100 SXM5", H100_MIN, False, sender=deployer)
    with reverts("registry: unknown or disabled class"):
        registry.set_offer(H100, 1, sender=provider)


################################################################
#                                views                         #
################################################################


def test_views__class_exists_and_gpu_classes(registry, deployer):
    assert registry.class_exists(CPU)
    assert registry.class_exists(H100)
    assert not registry.class_exists(0)
    assert not registry.class_exists(99)
    assert tuple(registry.gpu_classes(99)) == ("", 0, False)
    assert tuple(registry.gpu_classes(0)) == ("", 0, False)
    registry.set_gpu_class(H100, "H100 SXM5", H100_MIN, False, sender=deployer)
    assert not registry.class_exists(H100)
    g = registry.gpu_classes(H100)
    assert (g.name, g.min_stake_per_gpu, g.enabled) == ("H100 SXM5", H100_MIN, False)


def test_views__machine_getters__agree_with_register(registry, deployer, provider, provider2, register):
    register(provider2, CPU, 1, 1, "a")
    mid = register(provider, H100, 64, VRAM_MAX, "b" * 256)  # widest packed fields
    assert tuple(registry.machines(mid)) == (provider.address, H100, 64, VRAM_MAX, PENDING, "b" * 256, 0)
    assert registry.machine_status(mid) == PENDING
    assert registry.machine_provider(mid) == provider.address
    assert registry.machine_endpoint(mid) == "b" * 256
    assert registry.attested_until(mid) == 0
    registry.set_machine_status(mid, ACTIVE, sender=deployer)
    # Changing the status and expiry leaves the other packed fields intact.
    assert tuple(registry.machines(mid)) == (provider.address, H100, 64, VRAM_MAX, ACTIVE, "b" * 256, NO_EXPIRY)
    assert registry.attested_until(mid) == NO_EXPIRY
    registry.set_machine_status(mid, JAILED, sender=deployer)
    assert tuple(registry.machines(mid)) == (provider.address, H100, 64, VRAM_MAX, JAILED, "b" * 256, 0)
    assert tuple(registry.machines(1)) == (provider2.address, CPU, 1, 1, PENDING, "a", 0)


def test_views__unknown_machine__zero_values(registry):
    assert tuple(registry.machines(5)) == (ZERO, 0, 0, 0, 0, "", 0)
    assert registry.attested_until(5) == 0
    assert registry.machine_status(5) == MachineStatus.NONE
    assert registry.machine_provider(5) == ZERO
    assert registry.machine_endpoint(5) == ""


def test_views__stake_getters__consistent(registry, provider, locker, active_machine):
    registry.request_unstake(100 * ONE_TOKEN, sender=provider)
    registry.lock_collateral(provider, active_machine, CPU, 250 * ONE_TOKEN, sender=locker)
    s = registry.stakes(provider)
    assert (s.staked, s.locked, s.unbonding) == (900 * ONE_TOKEN, 250 * ONE_TOKEN, 100 * ONE_TOKEN)
    assert s.unbonding_release == registry.unbonding_release(provider) > 0
    assert registry.staked(provider) == 900 * ONE_TOKEN
    assert registry.locked(provider) == 250 * ONE_TOKEN
    assert registry.free_stake(provider) == 650 * ONE_TOKEN
    assert registry.slashable(provider) == STAKE
    assert registry.unbonding(provider) == 100 * ONE_TOKEN


def test_views__stranger__all_zero(registry, attacker):
    assert tuple(registry.stakes(attacker)) == (0, 0, 0, 0)
    assert registry.free_stake(attacker) == 0
    assert registry.slashable(attacker) == 0
    assert registry.staked(attacker) == 0
    assert registry.locked(attacker) == 0
    assert registry.required_stake(attacker) == 0


################################################################
#                            set_gpu_class                     #
################################################################


def test_set_gpu_class__new_class__added(registry, deployer, provider, register):
    tx = registry.set_gpu_class(42, "MI300X", 280 * ONE_TOKEN, True, sender=deployer)
    assert _one(tx, registry.GpuClassSet) == {
        "class_id": 42,
        "name": "MI300X",
        "min_stake_per_gpu": 280 * ONE_TOKEN,
        "enabled": True,
    }
    assert registry.class_exists(42)
    assert tuple(registry.gpu_classes(42)) == ("MI300X", 280 * ONE_TOKEN, True)
    register(provider, 42, 2)
    assert registry.required_stake(provider) == 560 * ONE_TOKEN


def test_set_gpu_class__disable__existing_machines_keep_working(
    reverts, registry, deployer, provider, locker, active_machine
):
    tx = registry.set_gpu_class(CPU, "CPU", CPU_MIN, False, sender=deployer)
    assert _one(tx, registry.GpuClassSet) == {
        "class_id": CPU,
        "name": "CPU",
        "min_stake_per_gpu": CPU_MIN,
        "enabled": False,
    }
    assert not registry.class_exists(CPU)
    registry.lock_collateral(provider, active_machine, CPU, ONE_TOKEN, sender=locker)
    assert registry.locked(provider) == ONE_TOKEN
    with reverts("registry: unknown or disabled class"):
        registry.register(CPU, 1, 1, ENDPOINT, sender=provider)


@pytest.mark.parametrize("who", ["attacker", "provider"])
def test_set_gpu_class__not_admin__reverts(reverts, registry, actors, who):
    caller = actors[who]
    with reverts("access_control: account is missing role"):
        registry.set_gpu_class(42, "X", 0, True, sender=caller)
    with reverts("access_control: account is missing role"):
        registry.set_gpu_class(CPU, "CPU", 0, False, sender=caller)


def test_set_gpu_class__class_zero__reverts(reverts, registry, deployer):
    with reverts("registry: class id zero is reserved"):
        registry.set_gpu_class(0, "none", 1, True, sender=deployer)


def test_set_gpu_class__empty_name__reverts(reverts, registry, deployer):
    with reverts("registry: class name is empty"):
        registry.set_gpu_class(42, "", 1, True, sender=deployer)
    with reverts("registry: class name is empty"):
        registry.set_gpu_class(CPU, "", 1, True, sender=deployer)


################################################################
#                         set_unbonding_period                 #
################################################################


@pytest.mark.parametrize("seconds", [MIN_PERIOD, MAX_PERIOD, 86400])
def test_set_unbonding_period__in_bounds__set(registry, deployer, seconds):
    tx = registry.set_unbonding_period(seconds, sender=deployer)
    assert _one(tx, registry.UnbondingPeriodSet) == {"seconds": seconds}
    assert registry.unbonding_period() == seconds


@pytest.mark.parametrize(
    "seconds,message",
    [
        (0, "registry: unbonding period too short"),
        (MIN_PERIOD - 1, "registry: unbonding period too short"),
        (MAX_PERIOD + 1, "registry: unbonding period too long"),
    ],
)
def test_set_unbonding_period__out_of_bounds__reverts(reverts, registry, deployer, seconds, message):
    with reverts(message):
        registry.set_unbonding_period(seconds, sender=deployer)


def test_set_unbonding_period__not_admin__reverts(reverts, registry, attacker):
    with reverts("access_control: account is missing role"):
        registry.set_unbonding_period(MIN_PERIOD, sender=attacker)


################################################################
#                          set_machine_status                  #
################################################################


@pytest.mark.parametrize(
    "path", [(ACTIVE,), (JAILED,), (PENDING,), (ACTIVE, JAILED), (JAILED, ACTIVE), (ACTIVE, PENDING)]
)
def test_set_machine_status__attester__transitions(registry, deployer, provider, register, path):
    mid = register(provider)
    old = PENDING
    for new in path:
        tx = registry.set_machine_status(mid, new, sender=deployer)
        assert _one(tx, registry.MachineStatusChanged) == {
            "machine_id": mid,
            "provider": provider.address,
            "old_status": old,
            "new_status": new,
        }
        # Active by hand never expires; Pending and Jailed clear the expiry.
        attested = NO_EXPIRY if new == ACTIVE else 0
        assert _one(tx, registry.AttestationRecorded) == {"machine_id": mid, "status": new, "attested_until": attested}
        assert registry.machine_status(mid) == new
        assert registry.attested_until(mid) == attested
        assert registry.machines(mid).attested_until == attested
        old = new
    assert registry.machine_provider(mid) == provider.address


@pytest.mark.parametrize("status", [PENDING, JAILED])
def test_set_machine_status__after_oracle_attestation__clears_expiry(
    reverts, registry, chain, deployer, provider, locker, active_machine, status
):
    valid_until = chain.pending_timestamp + 3600
    registry.record_attestation(active_machine, CPU, True, valid_until, sender=deployer)
    assert registry.attested_until(active_machine) == valid_until
    registry.set_machine_status(active_machine, status, sender=deployer)
    assert registry.attested_until(active_machine) == 0
    registry.set_machine_status(active_machine, ACTIVE, sender=deployer)
    assert registry.attested_until(active_machine) == NO_EXPIRY
    # The hand override outlives the oracle's expiry.
    chain.pending_timestamp = valid_until + 1
    registry.lock_collateral(provider, active_machine, CPU, 1, sender=locker)
    assert registry.locked(provider) == 1


@pytest.mark.parametrize("who", ["attacker", "provider"])
def test_set_machine_status__not_attester__reverts(reverts, registry, actors, register, provider, who):
    mid = register(provider)
    caller = actors[who]
    with reverts("access_control: account is missing role"):
        registry.set_machine_status(mid, ACTIVE, sender=caller)


@pytest.mark.parametrize("machine_id", [0, 2, 99])
def test_set_machine_status__unknown_machine__reverts(reverts, registry, deployer, provider, register, machine_id):
    register(provider)
    with reverts("registry: unknown machine"):
        registry.set_machine_status(machine_id, ACTIVE, sender=deployer)


@pytest.mark.parametrize("status", [PENDING, ACTIVE, JAILED])
def test_set_machine_status__exited__reverts(reverts, registry, deployer, provider, register, status):
    mid = register(provider)
    registry.exit_machine(mid, sender=provider)
    with reverts("registry: machine exited"):
        registry.set_machine_status(mid, status, sender=deployer)


@pytest.mark.parametrize("status", [0, EXITED, 5, 255])
def test_set_machine_status__invalid_status__reverts(reverts, registry, deployer, provider, register, status):
    mid = register(provider)
    with reverts("registry: invalid status"):
        registry.set_machine_status(mid, status, sender=deployer)


################################################################
#                          record_attestation                  #
################################################################


@pytest.mark.parametrize("start", [PENDING, ACTIVE])  # Jailed: ..._jailed_machine__refused_until_...
def test_record_attestation__passed__active_until_valid_until(registry, chain, deployer, provider, register, start):
    mid = register(provider, H100, 8, 81_920)
    if start != PENDING:
        registry.set_machine_status(mid, start, sender=deployer)
    valid_until = chain.pending_timestamp + 86400
    tx = registry.record_attestation(mid, H100, True, valid_until, sender=deployer)
    assert _one(tx, registry.MachineStatusChanged) == {
        "machine_id": mid,
        "provider": provider.address,
        "old_status": start,
        "new_status": ACTIVE,
    }
    assert _one(tx, registry.AttestationRecorded) == {
        "machine_id": mid,
        "status": ACTIVE,
        "attested_until": valid_until,
    }
    assert tuple(registry.machines(mid)) == (provider.address, H100, 8, 81_920, ACTIVE, ENDPOINT, valid_until)
    assert registry.attested_until(mid) == valid_until


def test_record_attestation__renewal__extends_expiry(registry, chain, deployer, provider, register):
    mid = register(provider)
    first = chain.pending_timestamp + 100
    registry.record_attestation(mid, CPU, True, first, sender=deployer)
    tx = registry.record_attestation(mid, CPU, True, first + 86400, sender=deployer)
    assert _one(tx, registry.MachineStatusChanged)["old_status"] == ACTIVE
    assert registry.attested_until(mid) == first + 86400
    # A shorter renewal is taken as given: the latest attestation rules.
    registry.record_attestation(mid, CPU, True, first + 50, sender=deployer)
    assert registry.attested_until(mid) == first + 50


@pytest.mark.parametrize("start", [PENDING, ACTIVE])
def test_record_attestation__failed__jailed_and_expiry_cleared(registry, chain, deployer, provider, register, start):
    mid = register(provider, CPU, 3, VRAM_MAX)
    if start == ACTIVE:
        registry.record_attestation(mid, CPU, True, chain.pending_timestamp + 3600, sender=deployer)
    # valid_until is ignored for a failed attestation.
    tx = registry.record_attestation(mid, CPU, False, chain.pending_timestamp + 999, sender=deployer)
    assert _one(tx, registry.MachineStatusChanged) == {
        "machine_id": mid,
        "provider": provider.address,
        "old_status": start,
        "new_status": JAILED,
    }
    assert _one(tx, registry.AttestationRecorded) == {"machine_id": mid, "status": JAILED, "attested_until": 0}
    assert tuple(registry.machines(mid)) == (provider.address, CPU, 3, VRAM_MAX, JAILED, ENDPOINT, 0)


@pytest.mark.parametrize("valid_until", [0, 2**256 - 1])
def test_record_attestation__failed_with_past_valid_until__still_jails(
    registry, deployer, provider, register, valid_until
):
    """Failure needs no validity window: even valid_until = 0 or NO_EXPIRY jails."""
    mid = register(provider)
    registry.record_attestation(mid, CPU, False, valid_until, sender=deployer)
    assert (registry.machine_status(mid), registry.attested_until(mid)) == (JAILED, 0)


@pytest.mark.parametrize("passed", [False, True])
@pytest.mark.parametrize("jailed_by", ["attestation", "override"])
def test_record_attestation__jailed_machine__refused_until_its_provider_requests_one(
    reverts, registry, chain, deployer, provider, register, passed, jailed_by
):
    """A report drawn up before the jail landed (a second leader's, at the next nonce) must
    neither jail-and-slash the machine again nor free it; `request_attestation` reopens it."""
    mid = register(provider)
    if jailed_by == "attestation":
        registry.record_attestation(mid, CPU, False, 0, sender=deployer)
    else:
        registry.set_machine_status(mid, JAILED, sender=deployer)
    with reverts("registry: machine jailed (its provider must request_attestation)"):
        registry.record_attestation(mid, CPU, passed, chain.pending_timestamp + 100, sender=deployer)
    assert (registry.machine_status(mid), registry.attested_until(mid)) == (JAILED, 0)
    registry.request_attestation(mid, sender=provider)
    registry.record_attestation(mid, CPU, passed, chain.pending_timestamp + 100, sender=deployer)
    assert registry.machine_status(mid) == (ACTIVE if passed else JAILED)


def test_record_attestation__longest_validity__accepted(registry, deployer, provider, register):
    mid = register(provider)
    registry.record_attestation(mid, CPU, True, NO_EXPIRY - 1, sender=deployer)
    assert registry.attested_until(mid) == NO_EXPIRY - 1
    assert registry.machines(mid).vram_mb == 16_384  # the top bits did not spill into vram


def test_record_attestation__granted_attester__works(registry, roles, chain, deployer, keeper, provider, register):
    mid = register(provider)
    registry.grantRole(roles["ATTESTER_ROLE"], keeper, sender=deployer)
    registry.record_attestation(mid, CPU, True, chain.pending_timestamp + 10, sender=keeper)
    assert registry.machine_status(mid) == ACTIVE


@pytest.mark.parametrize("who", ["attacker", "provider", "locker", "slasher"])
@pytest.mark.parametrize("passed", [True, False])
def test_record_attestation__missing_role__reverts(reverts, registry, chain, actors, provider, register, who, passed):
    mid = register(provider)
    with reverts("access_control: account is missing role"):
        registry.record_attestation(mid, CPU, passed, chain.pending_timestamp + 100, sender=actors[who])
    assert registry.machine_status(mid) == PENDING


@pytest.mark.parametrize("machine_id", [0, 2, 99])
@pytest.mark.parametrize("passed", [True, False])
def test_record_attestation__unknown_machine__reverts(
    reverts, registry, chain, deployer, provider, register, machine_id, passed
):
    register(provider)
    with reverts("registry: unknown machine"):
        registry.record_attestation(machine_id, CPU, passed, chain.pending_timestamp + 100, sender=deployer)


@pytest.mark.parametrize("start", [PENDING, ACTIVE, JAILED])
def test_record_attestation__pass_on_exited_machine__reverts(
    reverts, registry, chain, deployer, provider, register, start
):
    mid = register(provider)
    if start != PENDING:
        registry.set_machine_status(mid, start, sender=deployer)
    registry.exit_machine(mid, sender=provider)
    with reverts("registry: machine exited"):
        registry.record_attestation(mid, CPU, True, chain.pending_timestamp + 100, sender=deployer)
    assert registry.machine_status(mid) == EXITED


@pytest.mark.parametrize("start", [PENDING, ACTIVE, JAILED])
@pytest.mark.parametrize("valid_until", [0, "later", 2**256 - 1])
def test_record_attestation__fail_on_exited_machine__logged_and_stays_exited(
    registry, token, market, chain, deployer, provider, register, start, valid_until
):
    """A failed attestation of a machine its provider exited since does not revert (the report,
    and the hardware slash that comes with it, must go through): it is logged with status
    Exited and changes no storage at all."""
    mid = register(provider, CPU, 2, 24_000)
    if start == ACTIVE:
        registry.record_attestation(mid, CPU, True, chain.pending_timestamp + 3600, sender=deployer)
    elif start == JAILED:
        registry.set_machine_status(mid, JAILED, sender=deployer)
    registry.exit_machine(mid, sender=provider)
    machine = tuple(registry.machines(mid))
    assert machine[4] == EXITED
    before = storage_roots(chain, (registry, token, market))
    until = chain.pending_timestamp + 100 if valid_until == "later" else valid_until
    tx = registry.record_attestation(mid, CPU, False, until, sender=deployer)
    assert _one(tx, registry.AttestationRecorded) == {"machine_id": mid, "status": EXITED, "attested_until": 0}
    assert not tx.decode_logs(registry.MachineStatusChanged)
    assert storage_roots(chain, (registry, token, market)) == before
    assert tuple(registry.machines(mid)) == machine
    assert registry.required_stake(provider) == 0


@pytest.mark.parametrize("passed", [True, False])
def test_record_attestation__exited_machine_missing_role_or_wrong_class__reverts(
    reverts, registry, chain, actors, deployer, provider, register, passed
):
    """The exited shortcut comes after the role and class checks."""
    mid = register(provider, CPU)
    registry.exit_machine(mid, sender=provider)
    with reverts(MISSING_ROLE):
        registry.record_attestation(mid, CPU, passed, chain.pending_timestamp + 100, sender=actors["attacker"])
    with reverts("registry: class mismatch"):
        registry.record_attestation(mid, H100, passed, chain.pending_timestamp + 100, sender=deployer)
    assert registry.machine_status(mid) == EXITED


@pytest.mark.parametrize("passed", [True, False])
def test_record_attestation__class_mismatch__reverts(reverts, registry, chain, deployer, provider, register, passed):
    mid = register(provider, CPU)
    with reverts("registry: class mismatch"):
        registry.record_attestation(mid, H100, passed, chain.pending_timestamp + 100, sender=deployer)
    with reverts("registry: class mismatch"):
        registry.record_attestation(mid, 0, passed, chain.pending_timestamp + 100, sender=deployer)


def test_record_attestation__already_expired__reverts(reverts, registry, chain, deployer, provider, register):
    mid = register(provider)
    past = chain.pending_timestamp - 1
    # (time only moves forward here: a revert may still advance the test chain's clock)
    for valid_until in (0, past):
        with reverts("registry: attestation already expired"):
            registry.record_attestation(mid, CPU, True, valid_until, sender=deployer)
    now = past + 100
    chain.pending_timestamp = now
    with reverts("registry: attestation already expired"):
        registry.record_attestation(mid, CPU, True, now, sender=deployer)  # valid_until == block.timestamp
    later = now + 100
    chain.pending_timestamp = later
    tx = registry.record_attestation(mid, CPU, True, later + 1, sender=deployer)
    assert tx.timestamp == later
    assert registry.attested_until(mid) == later + 1


@pytest.mark.parametrize("valid_until", [NO_EXPIRY, NO_EXPIRY + 1, 2**224, 2**256 - 1])
def test_record_attestation__too_long__reverts(reverts, registry, deployer, provider, register, valid_until):
    mid = register(provider)
    with reverts("registry: attestation too long"):
        registry.record_attestation(mid, CPU, True, valid_until, sender=deployer)


################################################################
#                           lock_collateral                    #
################################################################


def test_lock_collateral__active_machine__locks_free_stake(registry, token, provider, locker, active_machine):
    # No event: the market's JobAccepted / OrderFilled carries each job's collateral.
    registry.lock_collateral(provider, active_machine, CPU, 300 * ONE_TOKEN, sender=locker)
    assert registry.locked(provider) == 300 * ONE_TOKEN
    registry.lock_collateral(provider, active_machine, CPU, 700 * ONE_TOKEN, sender=locker)
    assert registry.locked(provider) == STAKE
    assert tuple(registry.stakes(provider)) == (STAKE, STAKE, 0, 0)
    assert registry.free_stake(provider) == 0
    assert token.balanceOf(registry) == STAKE  # locking moves no tokens


def test_lock_collateral__stake_exactly_required__works(registry, make_provider, provider, locker):
    mid = make_provider(provider, stake=8 * H100_MIN, class_id=H100, gpus=8, price=0)
    assert registry.required_stake(provider) == 8 * H100_MIN
    registry.lock_collateral(provider, mid, H100, 8 * H100_MIN, sender=locker)
    assert registry.locked(provider) == 8 * H100_MIN


@pytest.mark.parametrize("who", ["attacker", "slasher", "deployer", "provider"])
def test_lock_collateral__not_job_market__reverts(reverts, registry, actors, provider, active_machine, who):
    """Only the job market: not the admin, not a slasher, not the provider itself."""
    caller = actors[who]
    with reverts(NOT_MARKET):
        registry.lock_collateral(provider, active_machine, CPU, 1, sender=caller)
    assert registry.locked(provider) == 0


def test_lock_and_unlock__old_collateral_role_granted_then_revoked__cannot(
    reverts, registry, roles, deployer, provider, keeper, locker, active_machine
):
    """Holding the bytes32 of the former COLLATERAL_ROLE (grantRole accepts any role id) gives
    nothing, neither while granted nor after it is revoked."""
    registry.lock_collateral(provider, active_machine, CPU, 5, sender=locker)
    registry.grantRole(roles["COLLATERAL_ROLE"], keeper, sender=deployer)
    assert registry.hasRole(roles["COLLATERAL_ROLE"], keeper)
    for _ in range(2):
        with reverts(NOT_MARKET):
            registry.lock_collateral(provider, active_machine, CPU, 1, sender=keeper)
        with reverts(NOT_MARKET):
            registry.unlock_collateral(provider, 5, _record(completed=1), sender=keeper)
        registry.revokeRole(roles["COLLATERAL_ROLE"], keeper, sender=deployer)
    assert registry.locked(provider) == 5
    assert registry.reputation_word(provider) == 0


def test_lock_collateral__other_providers_machine__reverts(
    reverts, registry, provider, provider2, locker, active_machine
):
    registry.stake(STAKE, sender=provider2)
    with reverts("registry: not the provider's machine"):
        registry.lock_collateral(provider2, active_machine, CPU, 1, sender=locker)
    with reverts("registry: not the provider's machine"):
        registry.lock_collateral(provider, 99, CPU, 1, sender=locker)  # unknown machine


@pytest.mark.parametrize("status", [PENDING, JAILED, EXITED])
def test_lock_collateral__machine_not_active__reverts(
    reverts, registry, deployer, provider, locker, active_machine, status
):
    if status == EXITED:
        registry.exit_machine(active_machine, sender=provider)
    else:
        registry.set_machine_status(active_machine, status, sender=deployer)
    with reverts("registry: machine not active"):
        registry.lock_collateral(provider, active_machine, CPU, 1, sender=locker)


def test_lock_collateral__class_mismatch__reverts(reverts, registry, provider, locker, active_machine):
    with reverts("registry: class mismatch"):
        registry.lock_collateral(provider, active_machine, H100, 1, sender=locker)


def test_lock_collateral__attestation_expiry__enforced(
    reverts, registry, chain, deployer, provider, locker, active_machine
):
    """Usable up to and including attested_until; one second later it takes no new collateral."""
    valid_until = chain.pending_timestamp + 3600
    registry.record_attestation(active_machine, CPU, True, valid_until, sender=deployer)
    chain.pending_timestamp = valid_until
    tx = registry.lock_collateral(provider, active_machine, CPU, 1, sender=locker)
    assert tx.timestamp == valid_until
    assert registry.locked(provider) == 1
    chain.pending_timestamp = valid_until + 1
    with reverts("registry: attestation expired"):
        registry.lock_collateral(provider, active_machine, CPU, 1, sender=locker)
    # Still Active, just stale; unlocking is unaffected; a renewal makes it usable again.
    assert registry.machine_status(active_machine) == ACTIVE
    registry.unlock_collateral(provider, 1, 0, sender=locker)
    assert registry.locked(provider) == 0
    registry.record_attestation(active_machine, CPU, True, valid_until + 1000, sender=deployer)
    registry.lock_collateral(provider, active_machine, CPU, 5, sender=locker)
    assert registry.locked(provider) == 5


def test_lock_collateral__hand_activated__never_expires(registry, chain, provider, locker, active_machine):
    assert registry.attested_until(active_machine) == NO_EXPIRY
    chain.pending_timestamp += 10 * 365 * 86400
    registry.lock_collateral(provider, active_machine, CPU, 1, sender=locker)
    assert registry.locked(provider) == 1


def test_lock_collateral__stake_below_minimum__reverts(reverts, registry, make_provider, provider, locker):
    mid = make_provider(provider, stake=8 * H100_MIN, class_id=H100, gpus=8, price=0)
    registry.request_unstake(1, sender=provider)  # unbonding stake does not count
    with reverts("registry: stake below minimum"):
        registry.lock_collateral(provider, mid, H100, 1, sender=locker)


def test_lock_collateral__other_machines_count_toward_minimum__reverts(
    reverts, registry, make_provider, provider, locker, register
):
    mid = make_provider(provider, stake=CPU_MIN, price=0)
    registry.lock_collateral(provider, mid, CPU, 1, sender=locker)
    register(provider, H100, 1)  # pending, but its requirement counts from registration
    with reverts("registry: stake below minimum"):
        registry.lock_collateral(provider, mid, CPU, 1, sender=locker)
    registry.exit_machine(2, sender=provider)
    registry.lock_collateral(provider, mid, CPU, 1, sender=locker)
    assert registry.locked(provider) == 2


def test_lock_collateral__not_enough_free_stake__reverts(reverts, registry, provider, locker, active_machine):
    registry.lock_collateral(provider, active_machine, CPU, 600 * ONE_TOKEN, sender=locker)
    with reverts("registry: not enough free stake"):
        registry.lock_collateral(provider, active_machine, CPU, 400 * ONE_TOKEN + 1, sender=locker)


################################################################
#                          unlock_collateral                   #
################################################################


def test_unlock_collateral__locked__releases(registry, provider, locker, active_machine):
    registry.lock_collateral(provider, active_machine, CPU, 500 * ONE_TOKEN, sender=locker)
    tx = registry.unlock_collateral(provider, 200 * ONE_TOKEN, 0, sender=locker)
    assert _one(tx, registry.CollateralUnlocked) == {
        "provider": provider.address,
        "amount": 200 * ONE_TOKEN,
        "locked": 300 * ONE_TOKEN,
    }
    assert tuple(registry.stakes(provider)) == (STAKE, 300 * ONE_TOKEN, 0, 0)
    assert registry.free_stake(provider) == 700 * ONE_TOKEN
    # No record: the reputation is untouched.
    assert registry.reputation_word(provider) == 0
    assert tuple(registry.reputation(provider)) == (0,) * 6


def test_unlock_collateral__more_than_locked__floors_at_zero(registry, provider, locker, active_machine):
    registry.lock_collateral(provider, active_machine, CPU, 5, sender=locker)
    tx = registry.unlock_collateral(provider, 9, 0, sender=locker)
    assert _one(tx, registry.CollateralUnlocked)["locked"] == 0
    assert tuple(registry.stakes(provider)) == (STAKE, 0, 0, 0)


@pytest.mark.parametrize("who", ["attacker", "slasher", "provider", "deployer"])
@pytest.mark.parametrize("amount,record", [(5, 0), (0, 1), (5, 1 << 40)], ids=["amount", "record", "both"])
def test_unlock_collateral__not_job_market__reverts(
    reverts, registry, actors, provider, locker, active_machine, who, amount, record
):
    registry.lock_collateral(provider, active_machine, CPU, 5, sender=locker)
    caller = actors[who]
    with reverts(NOT_MARKET):
        registry.unlock_collateral(provider, amount, record, sender=caller)
    assert registry.locked(provider) == 5
    assert registry.reputation_word(provider) == 0


def test_unlock_collateral__with_record__releases_and_adds_to_reputation(registry, provider, locker, active_machine):
    registry.lock_collateral(provider, active_machine, CPU, 500 * ONE_TOKEN, sender=locker)
    record = _record(completed=3, audits_passed=1, disputes_won=1)
    tx = registry.unlock_collateral(provider, 200 * ONE_TOKEN, record, sender=locker)
    assert _one(tx, registry.CollateralUnlocked)["locked"] == 300 * ONE_TOKEN
    assert registry.reputation_word(provider) == record
    rep = registry.reputation(provider)
    assert {f: getattr(rep, f) for f in REP_FIELDS} == {
        "completed": 3,
        "failed": 0,
        "expired": 0,
        "audits_passed": 1,
        "disputes_won": 1,
        "disputes_lost": 0,
    }


def test_unlock_collateral__zero_amount__record_only_no_unlock_event(
    registry, provider, provider2, locker, active_machine
):
    """Amount 0 is allowed: only the record is added (no CollateralUnlocked, stakes unchanged);
    the provider need not have anything locked, or even be staked."""
    registry.lock_collateral(provider, active_machine, CPU, 7, sender=locker)
    stakes = tuple(registry.stakes(provider))
    tx = registry.unlock_collateral(provider, 0, _record(failed=1, disputes_lost=1), sender=locker)
    assert not tx.decode_logs(registry.CollateralUnlocked)
    assert tuple(registry.stakes(provider)) == stakes
    assert tuple(registry.reputation(provider)) == (0, 1, 0, 0, 0, 1)
    registry.unlock_collateral(provider2, 0, _record(expired=2), sender=locker)
    assert tuple(registry.reputation(provider2)) == (0, 0, 2, 0, 0, 0)
    assert tuple(registry.stakes(provider2)) == (0, 0, 0, 0)


def test_unlock_collateral__zero_amount_zero_record__changes_nothing(
    chain, registry, token, market, provider, locker, active_machine
):
    registry.lock_collateral(provider, active_machine, CPU, 7, sender=locker)
    before = storage_roots(chain, (registry, token, market))
    tx = registry.unlock_collateral(provider, 0, 0, sender=locker)
    assert not tx.decode_logs(registry.CollateralUnlocked)
    assert storage_roots(chain, (registry, token, market)) == before


@pytest.mark.parametrize("field", REP_FIELDS)
def test_unlock_collateral__each_counter__at_its_40_bit_offset(registry, provider, locker, field):
    registry.unlock_collateral(provider, 0, 1 << REP_SHIFT[field], sender=locker)
    registry.unlock_collateral(provider, 0, 99 << REP_SHIFT[field], sender=locker)
    rep = registry.reputation(provider)
    assert {f: getattr(rep, f) for f in REP_FIELDS} == {f: (100 if f == field else 0) for f in REP_FIELDS}
    assert registry.reputation_word(provider) == 100 << REP_SHIFT[field]


def test_unlock_collateral__records_accumulate_per_provider(registry, provider, provider2, locker):
    all_six = _record(**{f: i + 1 for i, f in enumerate(REP_FIELDS)})
    for _ in range(3):
        registry.unlock_collateral(provider, 0, all_six, sender=locker)
    assert tuple(registry.reputation(provider)) == (3, 6, 9, 12, 15, 18)
    assert registry.reputation_word(provider) == 3 * all_six
    # Another provider's record is its own.
    assert tuple(registry.reputation(provider2)) == (0,) * 6
    assert registry.reputation_word(provider2) == 0


def test_unlock_collateral__largest_counters__decoded_in_their_own_fields(registry, provider, locker):
    """Every counter at its 40-bit maximum: the views split the word without carries."""
    full = _record(**{f: 2**40 - 1 for f in REP_FIELDS})
    registry.unlock_collateral(provider, 0, full, sender=locker)
    assert registry.reputation_word(provider) == 2**240 - 1
    assert tuple(registry.reputation(provider)) == (2**40 - 1,) * 6


def test_reputation__unknown_provider__all_zero(registry, attacker):
    assert tuple(registry.reputation(attacker)) == (0,) * 6
    assert registry.reputation_word(attacker) == 0


################################################################
#                                slash                         #
################################################################


def test_slash__from_staked__pays_beneficiary(registry, token, provider, slasher, treasury):
    registry.stake(STAKE, sender=provider)
    bal = token.balanceOf(treasury)
    supply = token.totalSupply()
    assert registry.slash.call(provider, 100 * ONE_TOKEN, REASON, treasury, sender=slasher) == 100 * ONE_TOKEN
    tx = registry.slash(provider, 100 * ONE_TOKEN, REASON, treasury, sender=slasher)
    assert _one(tx, registry.Slashed) == {
        "provider": provider.address,
        "amount": 100 * ONE_TOKEN,
        "reason": REASON,
        "beneficiary": treasury.address,
        "slasher": slasher.address,
    }
    assert tuple(registry.stakes(provider)) == (900 * ONE_TOKEN, 0, 0, 0)
    assert token.balanceOf(treasury) == bal + 100 * ONE_TOKEN
    assert token.balanceOf(registry) == 900 * ONE_TOKEN
    assert token.totalSupply() == supply


def test_slash__zero_beneficiary__burns(registry, token, provider, slasher):
    registry.stake(STAKE, sender=provider)
    supply = token.totalSupply()
    tx = registry.slash(provider, 250 * ONE_TOKEN, REASON, ZERO, sender=slasher)
    ev = _one(tx, registry.Slashed)
    assert (ev["amount"], ev["beneficiary"]) == (250 * ONE_TOKEN, ZERO)
    (burn,) = tx.decode_logs(token.Transfer)
    assert _args(burn) == {"sender": registry.address, "receiver": ZERO, "value": 250 * ONE_TOKEN}
    assert token.totalSupply() == supply - 250 * ONE_TOKEN
    assert token.balanceOf(registry) == 750 * ONE_TOKEN
    assert registry.staked(provider) == 750 * ONE_TOKEN


def test_slash__unbonding_stake__still_slashable(registry, token, chain, provider, slasher, treasury):
    """Staked first, then unbonding: requesting an unstake does not escape a slash."""
    registry.stake(STAKE, sender=provider)
    release = registry.request_unstake(600 * ONE_TOKEN, sender=provider).timestamp + PERIOD
    assert registry.slash.call(provider, 700 * ONE_TOKEN, REASON, treasury, sender=slasher) == 700 * ONE_TOKEN
    tx = registry.slash(provider, 700 * ONE_TOKEN, REASON, treasury, sender=slasher)
    assert _one(tx, registry.Slashed)["amount"] == 700 * ONE_TOKEN
    # 400 from staked, the remaining 300 from unbonding; the release time is unchanged.
    assert tuple(registry.stakes(provider)) == (0, 0, 300 * ONE_TOKEN, release)
    assert registry.slashable(provider) == 300 * ONE_TOKEN
    chain.pending_timestamp = release
    bal = token.balanceOf(provider)
    registry.withdraw(sender=provider)
    assert token.balanceOf(provider) == bal + 300 * ONE_TOKEN
    assert token.balanceOf(registry) == 0


def test_slash__only_unbonding_left__takes_it(reverts, registry, provider, slasher, treasury):
    registry.stake(STAKE, sender=provider)
    registry.request_unstake(STAKE, sender=provider)
    registry.slash(provider, STAKE, REASON, treasury, sender=slasher)
    assert tuple(registry.stakes(provider))[:3] == (0, 0, 0)
    with reverts("registry: nothing unbonding"):
        registry.withdraw(sender=provider)


def test_slash__more_than_slashable__capped_at_staked_plus_unbonding(registry, token, provider, slasher, treasury):
    registry.stake(STAKE, sender=provider)
    registry.request_unstake(100 * ONE_TOKEN, sender=provider)
    bal = token.balanceOf(treasury)
    assert registry.slash.call(provider, 10 * STAKE, REASON, treasury, sender=slasher) == STAKE
    tx = registry.slash(provider, 10 * STAKE, REASON, treasury, sender=slasher)
    assert _one(tx, registry.Slashed)["amount"] == STAKE
    assert token.balanceOf(treasury) == bal + STAKE
    assert registry.slashable(provider) == 0
    assert tuple(registry.stakes(provider))[:3] == (0, 0, 0)
    assert token.balanceOf(registry) == 0


def test_slash__nothing_to_slash__returns_zero_and_moves_nothing(
    chain, registry, token, market, attacker, slasher, treasury
):
    before = storage_roots(chain, (registry, token, market))
    assert registry.slash.call(attacker, ONE_TOKEN, REASON, treasury, sender=slasher) == 0
    tx = registry.slash(attacker, ONE_TOKEN, REASON, treasury, sender=slasher)
    assert _one(tx, registry.Slashed)["amount"] == 0
    assert not tx.decode_logs(token.Transfer)
    assert storage_roots(chain, (registry, token, market)) == before


def test_slash__other_providers__untouched(registry, token, provider, provider2, slasher, treasury):
    registry.stake(STAKE, sender=provider)
    registry.stake(2 * STAKE, sender=provider2)
    registry.slash(provider, 10 * STAKE, REASON, treasury, sender=slasher)
    assert tuple(registry.stakes(provider2)) == (2 * STAKE, 0, 0, 0)
    assert token.balanceOf(registry) == 2 * STAKE


def test_slash__below_locked__locked_stays_and_restake_cannot_escape_open_jobs(
    reverts, registry, provider, locker, slasher, treasury, active_machine
):
    registry.lock_collateral(provider, active_machine, CPU, 800 * ONE_TOKEN, sender=locker)
    registry.slash(provider, 500 * ONE_TOKEN, REASON, treasury, sender=slasher)
    # Locked stays the open jobs' total even though only 500 remain staked.
    assert tuple(registry.stakes(provider)) == (500 * ONE_TOKEN, 800 * ONE_TOKEN, 0, 0)
    assert registry.free_stake(provider) == 0
    with reverts("registry: not enough free stake"):
        registry.request_unstake(1, sender=provider)
    # Restaking 400 leaves only 100 free: the 300 that refill the open job's collateral stay put.
    registry.stake(400 * ONE_TOKEN, sender=provider)
    assert registry.free_stake(provider) == 100 * ONE_TOKEN
    with reverts("registry: not enough free stake"):
        registry.request_unstake(100 * ONE_TOKEN + 1, sender=provider)
    with reverts("registry: not enough free stake"):
        registry.lock_collateral(provider, active_machine, CPU, 100 * ONE_TOKEN + 1, sender=locker)
    # The job that locked 800 ends: everything is free again.
    tx = registry.unlock_collateral(provider, 800 * ONE_TOKEN, 0, sender=locker)
    assert _one(tx, registry.CollateralUnlocked)["locked"] == 0
    assert tuple(registry.stakes(provider)) == (900 * ONE_TOKEN, 0, 0, 0)
    assert registry.free_stake(provider) == 900 * ONE_TOKEN


def test_slash__within_free_stake__locked_unchanged(registry, provider, locker, slasher, treasury, active_machine):
    registry.lock_collateral(provider, active_machine, CPU, 300 * ONE_TOKEN, sender=locker)
    registry.slash(provider, 200 * ONE_TOKEN, REASON, treasury, sender=slasher)
    assert tuple(registry.stakes(provider)) == (800 * ONE_TOKEN, 300 * ONE_TOKEN, 0, 0)


@pytest.mark.parametrize("who", ["attacker", "deployer", "provider"])
def test_slash__missing_role__reverts(reverts, registry, actors, provider, who):
    registry.stake(STAKE, sender=provider)
    caller = actors[who]
    with reverts(MISSING_ROLE):
        registry.slash(provider, ONE_TOKEN, REASON, caller, sender=caller)


def test_slash__job_market__allowed_without_slasher_role(registry, token, roles, provider, locker, treasury):
    """The job market slashes no-shows and invalid results by its set-once address."""
    registry.stake(STAKE, sender=provider)
    assert not registry.hasRole(roles["SLASHER_ROLE"], locker)
    bal = token.balanceOf(treasury)
    assert registry.slash.call(provider, 10 * ONE_TOKEN, REASON, treasury, sender=locker) == 10 * ONE_TOKEN
    tx = registry.slash(provider, 10 * ONE_TOKEN, REASON, treasury, sender=locker)
    assert _one(tx, registry.Slashed) == {
        "provider": provider.address,
        "amount": 10 * ONE_TOKEN,
        "reason": REASON,
        "beneficiary": treasury.address,
        "slasher": locker.address,
    }
    assert registry.staked(provider) == STAKE - 10 * ONE_TOKEN
    assert token.balanceOf(treasury) == bal + 10 * ONE_TOKEN
    with ape.reverts("registry: amount is zero"):
        registry.slash(provider, 0, REASON, treasury, sender=locker)


def test_slash__revoked_slasher__reverts(reverts, registry, roles, deployer, provider, slasher, treasury):
    registry.stake(STAKE, sender=provider)
    registry.revokeRole(roles["SLASHER_ROLE"], slasher, sender=deployer)
    with reverts(MISSING_ROLE):
        registry.slash(provider, ONE_TOKEN, REASON, treasury, sender=slasher)
    assert registry.staked(provider) == STAKE


def test_slash__granted_slasher__works(registry, roles, deployer, provider, keeper, treasury):
    registry.stake(STAKE, sender=provider)
    registry.grantRole(roles["SLASHER_ROLE"], keeper, sender=deployer)
    registry.slash(provider, ONE_TOKEN, REASON, treasury, sender=keeper)
    assert registry.staked(provider) == STAKE - ONE_TOKEN


def test_slash__zero_amount__reverts(reverts, registry, provider, slasher, treasury):
    registry.stake(STAKE, sender=provider)
    with reverts("registry: amount is zero"):
        registry.slash(provider, 0, REASON, treasury, sender=slasher)


################################################################
#                           pause / unpause                    #
################################################################


def test_pause_unpause__pauser__toggles_with_events(registry, deployer):
    tx = registry.pause(sender=deployer)
    assert registry.paused()
    assert _one(tx, registry.Paused) == {"account": deployer.address}
    tx = registry.unpause(sender=deployer)
    assert not registry.paused()
    assert _one(tx, registry.Unpaused) == {"account": deployer.address}


def test_pause__granted_guardian__can_pause(registry, roles, deployer, keeper):
    registry.grantRole(roles["PAUSER_ROLE"], keeper, sender=deployer)
    registry.pause(sender=keeper)
    assert registry.paused()


@pytest.mark.parametrize("who", ["attacker", "provider"])
def test_pause__not_pauser__reverts(reverts, registry, actors, who):
    caller = actors[who]
    with reverts("access_control: account is missing role"):
        registry.pause(sender=caller)


@pytest.mark.parametrize("who", ["attacker", "provider"])
def test_unpause__not_pauser__reverts(reverts, registry, deployer, actors, who):
    registry.pause(sender=deployer)
    caller = actors[who]
    with reverts("access_control: account is missing role"):
        registry.unpause(sender=caller)


def test_pause__already_paused__reverts(reverts, registry, deployer):
    registry.pause(sender=deployer)
    with reverts("pausable: contract is paused"):
        registry.pause(sender=deployer)
    assert registry.paused()


def test_unpause__not_paused__reverts(reverts, registry, deployer):
    with reverts("pausable: contract is not paused"):
        registry.unpause(sender=deployer)
    assert not registry.paused()


def test_pause__blocks_register_only(
    reverts, registry, token, chain, deployer, provider, locker, slasher, treasury, active_machine
):
    """Stake, unstake, withdraw, unlock, slash (and machine/offer upkeep) all work while paused.

    lock_collateral is not paused in the registry either: new jobs are paused in JobMarket."""
    registry.lock_collateral(provider, active_machine, CPU, 100 * ONE_TOKEN, sender=locker)
    registry.pause(sender=deployer)

    registry.stake(ONE_TOKEN, sender=provider)
    assert registry.staked(provider) == STAKE + ONE_TOKEN
    release = registry.request_unstake(50 * ONE_TOKEN, sender=provider).timestamp + PERIOD
    assert registry.unbonding(provider) == 50 * ONE_TOKEN
    registry.unlock_collateral(provider, 40 * ONE_TOKEN, _record(completed=1), sender=locker)
    assert registry.locked(provider) == 60 * ONE_TOKEN
    assert registry.reputation(provider).completed == 1
    registry.lock_collateral(provider, active_machine, CPU, 10 * ONE_TOKEN, sender=locker)
    assert registry.locked(provider) == 70 * ONE_TOKEN
    registry.slash(provider, ONE_TOKEN, REASON, treasury, sender=slasher)
    assert registry.staked(provider) == STAKE - 50 * ONE_TOKEN
    registry.set_offer(CPU, 3, sender=provider)
    registry.update_endpoint(active_machine, "http://moved", sender=provider)
    registry.set_machine_status(active_machine, JAILED, sender=deployer)
    chain.pending_timestamp = release
    bal = token.balanceOf(provider)
    registry.withdraw(sender=provider)
    assert token.balanceOf(provider) == bal + 50 * ONE_TOKEN
    registry.exit_machine(active_machine, sender=provider)
    assert registry.machine_status(active_machine) == EXITED

    with reverts("pausable: contract is paused"):
        registry.register(CPU, 1, 1, ENDPOINT, sender=provider)
    assert registry.paused()


################################################################
#                      accounting across a scenario            #
################################################################


def test_accounting__registry_balance_equals_staked_plus_unbonding(
    registry, token, chain, provider, provider2, locker, slasher, treasury, make_provider
):
    m1 = make_provider(provider, price=0)
    m2 = make_provider(provider2, stake=3 * STAKE, price=0)
    registry.lock_collateral(provider, m1, CPU, 400 * ONE_TOKEN, sender=locker)
    registry.lock_collateral(provider2, m2, CPU, 900 * ONE_TOKEN, sender=locker)
    registry.request_unstake(500 * ONE_TOKEN, sender=provider)
    registry.slash(provider, 800 * ONE_TOKEN, REASON, ZERO, sender=slasher)
    registry.slash(provider2, 100 * ONE_TOKEN, REASON, treasury, sender=slasher)
    release = registry.request_unstake(ONE_TOKEN, sender=provider2).timestamp + PERIOD
    registry.unlock_collateral(provider, 400 * ONE_TOKEN, _record(failed=1), sender=locker)
    chain.pending_timestamp = release
    registry.withdraw(sender=provider)
    registry.withdraw(sender=provider2)

    total = 0
    for p in (provider, provider2):
        s = registry.stakes(p)
        assert s.locked <= s.staked
        total += s.staked + s.unbonding
    assert token.balanceOf(registry) == total
    assert tuple(registry.stakes(provider)) == (0, 0, 0, 0)
    assert tuple(registry.stakes(provider2))[:3] == (3 * STAKE - 100 * ONE_TOKEN - ONE_TOKEN, 900 * ONE_TOKEN, 0)
