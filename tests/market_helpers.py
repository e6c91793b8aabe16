"""Helpers shared by the JobMarket unit tests (tests/test_market_*.py).

- `ev(receipt, event)`: the one decoded event of that type in a receipt, as a dict
  (ape's `log.provider` is its network provider, so read fields through `event_arguments`).
- `assert_job(market, jobs, job_id, status)`: the stored status and commitment match the
  tracked struct.
- `assert_books(market, token, jobs)`: the market holds exactly the escrowed payments of
  unfinished jobs, the bonds of open disputes, the escrow of finalized jobs not yet claimed
  (`accrued`) and the deployment's MARKET_DUST (fees are burned at the claims).
- `credit(jobs, ids)`: what finalizing the jobs `ids` adds to their provider's `accrued`.
- `snap` fixture + `no_change(snap)`: JobMarket, ComputeToken, ProviderRegistry and Settlement
  state (job slots, disputes, counters, params, balances, supply, stakes, pause flag,
  settlement burns) is unchanged across a reverted call.
- `ledger` fixture (`Ledger`): balance changes of the test accounts, the token supply
  (`supply`) and Settlement's `total_burned` (`settled`) since the last mark.
- `isolated(chain)`: try something and roll it back (use it, not `chain.isolate()`).
- `tampered(job, field)`: a copy of the struct tuple with one field altered.
- `oracle_service(tmp_path, deployment, chain, operator)`: an OracleService (not started) on
  the in-process chain, quorum 2, signing as `operator`: call its handlers and duties directly.
- AuditBeacon draws (the session deployment's beacon has no members, so an audited job's round
  degrades once its reveal window closes and the job is drawn):
  `beacon_members(beacon, accounts, deployer, chain, n)` -> [(account, HashChain)], members
  active from the current round with committed chains; `reveal_round(chain, beacon, members,
  round_)` moves time into the round and has each member reveal (returns the XOR of the reveals);
  `past_reveal_window(chain, beacon, round_)` mines the first block after the round's window.
"""

from contextlib import contextmanager

import pytest
from eth_utils import to_canonical_address

from offchain.chain.beacon import HashChain
from offchain.chain.deploy import MARKET_DUST
from offchain.chain.jobs import check_job, commitment
from offchain.constants import JOB_FIELDS, MAX_BPS, JobStatus

ZERO_ADDRESS = "0x" + "00" * 20
ZERO32 = b"\x00" * 32
SPEC = b"\x11" * 32
RESULT = b"\x22" * 32
ESCROWED = {JobStatus.OPEN, JobStatus.RUNNING, JobStatus.SUBMITTED, JobStatus.AUDIT}


def ev(receipt, event):
    logs = receipt.decode_logs(event)
    assert len(logs) == 1, f"expected one {event.name}, got {len(logs)}"
    return dict(logs[0].event_arguments)


def evs(receipt, event):
    return [dict(log.event_arguments) for log in receipt.decode_logs(event)]


def assert_job(market, jobs, job_id, status):
    assert market.job_status(job_id) == status
    assert check_job(market, job_id, jobs.t(job_id))
    assert market.job_commitment(job_id) == commitment(jobs[job_id])


def assert_books(market, token, jobs):
    """token.balanceOf(market) == escrowed payments of unfinished jobs + held dispute bonds +
    the escrow of finalized jobs not yet claimed (Σ `accrued(provider)[0]`) + the permanent
    wei deploy_all leaves in the market (MARKET_DUST)."""
    held = 0
    providers = {job["provider"] for job in jobs.values() if int(job["provider"], 16)}
    held += sum(market.accrued(p)[0] for p in providers)
    for job_id in range(1, market.job_count() + 1):
        status = market.job_status(job_id)
        if status in ESCROWED:
            held += jobs[job_id]["payment"]
        bond = market.disputes(job_id).bond
        if status == JobStatus.AUDIT:
            held += bond
        else:
            assert bond == 0, f"job {job_id}: dispute record left behind"
    balance = token.balanceOf(market)
    assert balance == held + MARKET_DUST, f"market holds {balance}, escrow + bonds + dust = {held + MARKET_DUST}"


def credit(jobs, ids):
    """What finalizing the jobs `ids` (of one provider) credits it, as `market.accrued` reads it:
    (escrow, USD value minus fees, escrow minus fees), each fee rounded down per job as
    JobMarket does, then summed."""
    burned = usd_net = cap = 0
    for job_id in ids:
        job = jobs[job_id]
        burned += job["payment"]
        usd_net += job["usd_value"] - job["usd_value"] * job["fee_bps"] // MAX_BPS
        cap += job["payment"] - job["payment"] * job["fee_bps"] // MAX_BPS
    return burned, usd_net, cap


def tampered(jobs, job_id, field):
    job = dict(jobs[job_id])
    value = job[field]
    if isinstance(value, (bytes, bytearray)):
        job[field] = bytes([value[0] ^ 1]) + bytes(value[1:])
    elif isinstance(value, str):  # address
        job[field] = "0x" + "00" * 19 + "42" if int(value, 16) != 0x42 else "0x" + "00" * 19 + "43"
    else:
        job[field] = value + 1
    return tuple(job[f] for f in JOB_FIELDS)


def set_params(market, admin, params, **changes):
    p = params.as_dict()
    p.update(changes)
    return market.set_params(tuple(p.values()), sender=admin)


@pytest.fixture
def settlement(deployment):
    return deployment.settlement


@pytest.fixture
def snap(chain, market, token, registry, settlement, provider, provider2, user, user2, keeper, attacker):
    """What a reverted call must not change. On the in-process chain: the storage roots of
    the four protocol contracts (every job slot, dispute, counter, parameter, balance,
    allowance, the supply, every stake and the settlement burns live there), read from py-evm
    because a view-by-view snapshot costs ~30 calls. Elsewhere: the same things through views."""
    contracts = (market, token, registry, settlement)
    people = (provider, provider2, user, user2, keeper, attacker, market, registry)

    def _roots():
        account_db = chain.provider.evm_backend.chain.get_vm().state._account_db
        return [account_db._get_storage_root(to_canonical_address(c.address)) for c in contracts]

    try:
        _roots()
        return _roots
    except AttributeError:  # not py-evm (e.g. anvil)
        return lambda: view_state(market, token, registry, settlement, people, (provider, provider2))


def view_state(market, token, registry, settlement, people, providers):
    count = market.job_count()
    return {
        "jobs": [(market.job_status(i), market.job_commitment(i)) for i in range(count + 2)],
        "disputes": [tuple(market.disputes(i)) for i in range(count + 1)],
        "market": (tuple(market.params()), market.paused()),
        "balances": [token.balanceOf(a) for a in people] + [token.totalSupply()],
        "token": (token.total_minted(), token.total_burned(), settlement.total_burned()),
        "stakes": [tuple(registry.stakes(p)) for p in providers],
    }


@contextmanager
def isolated(chain):
    """Runs the block on a chain snapshot and rolls it back afterwards. Unlike ape's
    `chain.isolate()`, which swallows every exception raised inside it (assertions
    included), this lets failures propagate."""
    snapshot_id = chain.snapshot()
    try:
        yield
    finally:
        chain.restore(snapshot_id)


@contextmanager
def no_change(snap):
    before = snap()
    yield
    assert snap() == before


class Ledger:
    """Token balances of named accounts, the total supply (`supply`) and, with a Settlement,
    the escrow burned by settlements (`settled`), and their change since the last mark.

    Settlement at $1 (conftest's price): finalizing moves nothing; the provider's claim burns
    the job's whole escrow and the provider is minted the escrow minus the fee, so a finalize
    then claim reads `provider=payment - fee, market=-payment, supply=-fee, settled=payment`."""

    def __init__(self, token, settlement=None, **accounts):
        self.token = token
        self.settlement = settlement
        self.accounts = accounts
        self.mark()

    def _read(self):
        out = {name: self.token.balanceOf(a) for name, a in self.accounts.items()}
        out["supply"] = self.token.totalSupply()
        if self.settlement is not None:
            out["settled"] = self.settlement.total_burned()
        return out

    def mark(self):
        self.start = self._read()

    def delta(self, reset=True):
        now = self._read()
        d = {k: now[k] - self.start[k] for k in now}
        if reset:
            self.start = now
        return d

    def expect(self, **changes):
        """Every tracked balance changed by exactly `changes` (0 for the ones not named)."""
        want = {k: changes.get(k, 0) for k in self.start}
        got = self.delta()
        assert got == want, f"changes {got} != expected {want}"


@pytest.fixture
def ledger(token, market, registry, settlement, user, user2, provider, provider2, keeper, attacker):
    return Ledger(
        token,
        settlement,
        user=user,
        user2=user2,
        provider=provider,
        provider2=provider2,
        keeper=keeper,
        attacker=attacker,
        market=market,
        registry=registry,
    )


################################################################
#                      AuditBeacon draws                       #
################################################################

# Reveals a test member can make before it must commit a new chain (HashChain.derive is cheap).
TEST_CHAIN_LENGTH = 32


def to_round(chain, beacon, round_, offset=0):
    """The next transaction lands `offset` seconds into `round_` (time never moves back)."""
    t = round_ * beacon.ROUND_SECONDS() + offset
    if chain.pending_timestamp < t:
        chain.pending_timestamp = t


def past_reveal_window(chain, beacon, round_):
    """Mines the first block after `round_`'s reveal window: from it on the round is ready or
    degraded (views read the head block's time)."""
    deadline = round_ * beacon.ROUND_SECONDS() + beacon.REVEAL_WINDOW()
    if chain.blocks.head.timestamp <= deadline:
        chain.mine(timestamp=deadline + 1)


def new_chain(member, generation=b"0"):
    return HashChain.derive(bytes.fromhex(member.address[2:]), generation, length=TEST_CHAIN_LENGTH)


def beacon_members(beacon, accounts, deployer, chain, n):
    """`n` fresh funded accounts made members of `beacon` (by `deployer`, its admin), each with
    a committed hash chain; time moves to the first round in which all are active and their
    chains apply. Returns [(account, HashChain)] for `reveal_round`."""
    members = []
    for _ in range(n):
        a = accounts.generate_test_account()
        deployer.transfer(a, 10**18)
        beacon.add_member(a, sender=deployer)
        hc = new_chain(a)
        beacon.commit(hc.commitment, sender=a)
        members.append((a, hc))
    to_round(chain, beacon, max(beacon.members(a).pending_from for a, _ in members))
    return members


def next_secret(beacon, member, hc, round_):
    """The value `member` must reveal for `round_` from its chain `hc` (its pending chain's first
    value once that applies)."""
    m = beacon.members(member)
    tip = m.pending_tip if m.pending_from != 0 and round_ >= m.pending_from else m.tip
    return hc.next_after(tip)


def reveal_round(chain, beacon, members, round_):
    """Moves time into `round_` (when not there yet) and has each (account, HashChain) of
    `members` reveal its next value, in order. Returns the XOR of their `reveal_share`s (bytes32),
    which is the round's `round_xor` when they are all its reveals."""
    from offchain.chain.beacon import reveal_share

    to_round(chain, beacon, round_)
    xor = 0
    for a, hc in members:
        secret = next_secret(beacon, a, hc, round_)
        beacon.reveal(round_, secret, sender=a)
        xor ^= int.from_bytes(reveal_share(a.address, secret), "big")
    return xor.to_bytes(32, "big")


def oracle_service(tmp_path, deployment, chain, operator):
    """An oracle service (not started) on the in-process chain, quorum 2, as `operator`."""
    from types import SimpleNamespace

    from offchain.oracle.service import OracleConfig, OracleService

    svc = OracleService(OracleConfig(network="ethereum:local:test", operator_key=operator.private_key,
                                     db_path=str(tmp_path / f"{operator.address}.sqlite")))  # fmt: skip
    svc.h = SimpleNamespace(market=deployment.market, beacon=deployment.beacon, hub=deployment.hub, chain=chain,
                            registry=deployment.registry, record={"start_block": 0})  # fmt: skip
    svc.chain_id, svc.sender, svc.threshold = chain.chain_id, operator, 2
    return svc


################################################################
#                       signed orders                          #
################################################################


def order_dict(chain, user, provider, **changes):
    """A signed order's fields (offchain/chain/orders.py): a $1 CPU job from `user` for `provider`
    (an address, an account, or None for an open order), valid for an hour; `changes` override."""
    from conftest import COMPLETE_WITHIN, CPU, PRICE, UNITS

    from offchain.constants import ONE_TOKEN

    target = ZERO_ADDRESS if provider is None else getattr(provider, "address", provider)
    return {
        "user": user.address,
        "provider": target,
        "class_id": CPU,
        "spec_hash": SPEC,
        "compute_units": UNITS,
        "price_per_unit": PRICE,
        "max_tokens": 10 * ONE_TOKEN,
        "accept_by": chain.pending_timestamp + 3600,
        "complete_within": COMPLETE_WITHIN,
        "salt": 1,
    } | changes


def batch_dict(order, spec_hashes, compute_units, **changes):
    """A batch order with `order`'s terms (its spec hash and units replaced by the lists)."""
    terms = {k: v for k, v in order.items() if k not in ("spec_hash", "compute_units")}
    return terms | {"spec_hashes": list(spec_hashes), "compute_units": list(compute_units)} | changes
