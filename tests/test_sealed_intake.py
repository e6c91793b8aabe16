"""The provider's check of a sealed job's envelope before it accepts (offchain/provider/guard.py
`open_envelope`), on the real KeyDirectory and OracleHub: every wrap an auditor may one day open
must be one the provider can check now. Found by an attacker's review: a user could add a
garbage wrap to an account that was not an auditor at acceptance (a staked future operator, an
operator without a key yet). Once that account audits, "the envelope does not open" is an
invalid verdict against a provider that could not have known."""

from __future__ import annotations

import os
import secrets
from types import SimpleNamespace

import pytest

from offchain import sealing as S
from offchain.chain import keys as K
from offchain.provider.guard import DataGuard
from offchain.provider.intake import Refuse

N_POOL = 4  # pool[0..2] operators (threshold 2), pool[3] staked, not an operator
SPEC = {"kind": "matmul_chain", "params": {"n": 8, "k": 2}, "seed": 3}


@pytest.fixture(scope="module")
def setup(deployment, hub, pool, provider, user, chain, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sealed_intake")
    h = SimpleNamespace(hub=hub, key_directory=deployment.key_directory, chain=chain)
    rings = {}
    for a in (pool[0], pool[1], provider):  # pool[2]: an operator that has not published a key
        rings[a.address] = S.Keyring.create(a.address, tmp / f"{a.address}.json", published=False)
        K.publish(h, a, rings[a.address])
    K._operators_cache.clear()
    K._auditors_cache.clear()
    w = SimpleNamespace(h=h, start_block=0, address=provider.address, agent=SimpleNamespace())
    guard = DataGuard(w)
    guard.keyring = rings[provider.address]
    return SimpleNamespace(h=h, rings=rings, guard=guard, pool=pool, provider=provider, user=user, tmp=tmp)


def _envelope(s, extra_wraps=()):
    """A job sealed as the client seals it (provider, operators with keys, the user's own key),
    plus `extra_wraps`: (address, version, garbage?) for the attacker's additions."""
    key = S.new_data_key()
    user_ring = S.Keyring.create(s.user.address)
    readers = [s.rings[a].recipient() for a in (s.provider.address, s.pool[0].address, s.pool[1].address)]
    wraps = [S._wrap(key, r) for r in [*readers, user_ring.recipient()]]
    for address, version, garbage in extra_wraps:
        if garbage:
            wraps.append({"to": address.lower(), "v": version, "e": os.urandom(32).hex(), "k": os.urandom(48).hex()})
        else:
            wraps.append(S._wrap(key, s.rings[address].recipient()))
    header = {"alg": S.ALG, "commit": S.key_commitment(key).hex(), "nonce": secrets.token_bytes(12).hex(),
              "wraps": wraps}  # fmt: skip
    return S._assemble(header, key, S.pack_spec(SPEC, {}, s.user.address))


def test_honest_envelope__accepted(setup):
    key, spec, where = setup.guard.open_envelope(_envelope(setup), setup.user.address)
    assert (spec, where) == (SPEC, {})  # opened, and the envelope names this user (checked inside)


def test_attack_garbage_wrap_to_a_future_operator__refused(setup):
    """pool[3] is staked and may be admitted later; it has no key yet, so its wrap cannot be
    checked: refused (the old check looked only at the current operators' wraps)."""
    with pytest.raises(Refuse, match=f"sealed to {setup.pool[3].address.lower()} under key version 1, which is not"):
        setup.guard.open_envelope(_envelope(setup, [(setup.pool[3].address, 1, True)]), setup.user.address)


def test_attack_garbage_wrap_to_an_operator_without_a_key__refused(setup):
    with pytest.raises(Refuse, match="a wrap nobody can check"):
        setup.guard.open_envelope(_envelope(setup, [(setup.pool[2].address, 1, True)]), setup.user.address)


def test_wrap_to_another_account_with_a_key__checked__garbage_refused_honest_accepted(setup):
    """Another reader with a published key (an open job's other candidate providers): its wrap is
    recomputed under its key, so a garbage one is refused and an honest one accepted."""
    s = setup
    other = s.pool[3]
    s.rings[other.address] = S.Keyring.create(other.address, s.tmp / "other.json", published=False)
    K.publish(s.h, other, s.rings[other.address])
    with pytest.raises(Refuse, match="sealed with a wrap that does not check"):
        s.guard.open_envelope(_envelope(s, [(other.address, 1, True)]), s.user.address)
    s.guard.open_envelope(_envelope(s, [(other.address, 1, False)]), s.user.address)
    with pytest.raises(Refuse, match="a wrap nobody can check"):  # a version never published
        s.guard.open_envelope(_envelope(s, [(other.address, 7, True)]), s.user.address)


class _Clock:
    t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _intake(s, tmp):
    """The provider's real Intake, DataGuard and BlobAccess around a worker without a chain
    loop: the cycle's snapshot (offers, stake) is given, the keys are the chain's."""
    from offchain.blob_auth import Domain, Verifier
    from offchain.provider.blob_access import BlobAccess
    from offchain.provider.blobs import BlobStore
    from offchain.provider.intake import Intake, _Cycle
    from offchain.provider.store import WorkerStore

    store = BlobStore(tmp / "blobs")
    clock = _Clock()
    access = BlobAccess(store, Verifier(Domain(31337, "0x" + "ab" * 20, s.provider.address)), clock=clock,
                        retention_s=3600, orphan_ttl_s=86400)  # fmt: skip
    done: dict[int, str] = {}
    w = SimpleNamespace(
        h=s.h, start_block=0, address=s.provider.address, blobs=store, agent=SimpleNamespace(access=access),
        cfg=SimpleNamespace(accept_margin_s=0, max_pending=10, tx_retry_s=5.0), store=WorkerStore(tmp / "w.sqlite"),
        jobs={}, _retry_at={}, _active_machines=lambda c, n: [1], _waiting=lambda j, why: None,
        _done=lambda j, why: done.__setitem__(j, why),
    )  # fmt: skip
    w.guard = DataGuard(w)
    w.guard.keyring = s.guard.keyring
    snap = _Cycle(offers={1: 1}, audit_bps=1000, detection_bps=9000, free=10**30, stake_ok=True, pending=0)
    return Intake(w), w, access, clock, snap


def _job(user, spec_hex, units):
    return {"user": user, "spec_hash": bytes.fromhex(spec_hex), "accept_by": 10**12, "class_id": 1,
            "usd_value": 10**20, "compute_units": units, "payment": 10, "collateral": 15}  # fmt: skip


def _reader(access, h, account) -> bool:
    return access.meta.read_one("SELECT 1 FROM reader WHERE hash = ? AND account = ?", (h, account.lower())) is not None


def test_attack_job_naming_someone_elses_blob__refused__its_funder_never_a_reader(setup, tmp_path):
    """A job funded at this provider with a victim's spec hash (or any blob's hash, a result's)
    made its funder a reader of that blob: the spec was linked to the job's user when the worker
    first saw the job, before any check (an attacker's review). It is linked only once the spec
    checks out as this user's, so the refused job leaves the funder a stranger to it."""
    from offchain.workloads import compute_units

    s = setup
    intake, w, access, _, snap = _intake(s, tmp_path)
    env = _envelope(s)
    spec_hex = w.blobs.put(env)
    access.record_put(s.user.address, spec_hex, len(env))
    attacker = s.pool[3].address
    w.jobs[1] = _job(attacker, spec_hex, compute_units(SPEC))
    w.store.add_candidate(1)
    intake.consider(1, 0, snap)
    assert w.store.job(1)["state"] == "refused" and "copied spec hash" in w.store.job(1)["reason"]
    assert not _reader(access, spec_hex, attacker)
    # The victim's own job with the same spec is linked, and its user (the uploader) reads it.
    w.jobs[2] = _job(s.user.address, spec_hex, compute_units(SPEC))
    w.store.add_candidate(2)
    intake.consider(2, 0, snap)
    assert snap.picked and snap.picked[1][0][0] == 2
    assert access.meta.read_one("SELECT 1 FROM job_blob WHERE hash = ? AND job_id = 2", (spec_hex,)) is not None


def test_refused_job__its_blobs_age_out_like_a_final_job(setup, tmp_path):
    """A job refused after its spec was linked (here: it pays for other compute units than its
    spec) counts as final for garbage collection: its spec goes after the retention period. It
    was kept forever (no final mark), which also let anyone pin a blob past the 24 h orphan rule."""
    from offchain.workloads import compute_units

    s = setup
    intake, w, access, clock, snap = _intake(s, tmp_path)
    env = _envelope(s)
    spec_hex = w.blobs.put(env)
    access.record_put(s.user.address, spec_hex, len(env))
    w.jobs[3] = _job(s.user.address, spec_hex, compute_units(SPEC) + 1)
    w.store.add_candidate(3)
    intake.consider(3, 0, snap)
    assert w.store.job(3)["state"] == "refused" and "compute units mismatch" in w.store.job(3)["reason"]
    clock.t += 3600 + 1
    assert access.collect() == [spec_hex] and not w.blobs.has(spec_hex)


def test_rotation_after_sealing__wraps_to_the_older_version_still_check__garbage_still_refused(setup):
    """A job waits for acceptance (up to its window) while another candidate provider and an
    operator rotate their keys: their wraps name the older version, which KeyDirectory's history
    still holds, so they are checked under it, not refused for good (found reviewing the fix
    above). The owners keep their old keys, so they can still open them."""
    s = setup
    other = s.pool[3]  # (each test starts from the module's chain: its key is published afresh)
    s.rings[other.address] = S.Keyring.create(other.address, s.tmp / "other-rotates.json", published=False)
    K.publish(s.h, other, s.rings[other.address])
    sealed_then = _envelope(s, [(other.address, s.rings[other.address].current, False)])
    garbage_then = _envelope(s, [(other.address, s.rings[other.address].current, True)])
    for acct in (other, s.pool[0]):  # a candidate provider and an operator rotate
        s.rings[acct.address].rotate()
        K.publish(s.h, acct, s.rings[acct.address])
    for cache in (K._auditors_cache, K._operators_cache, K._history):  # each test reverts the chain
        cache.clear()
    s.guard.open_envelope(sealed_then, s.user.address)
    with pytest.raises(Refuse, match="sealed with a wrap that does not check"):
        s.guard.open_envelope(garbage_then, s.user.address)


def test_waiting_candidate__its_spec_kept_past_the_orphan_rule__its_user_not_made_a_reader_by_it(setup, tmp_path):
    """A job waits (here: no offer for its class yet) for longer than the 24 h orphan rule: its
    spec is kept for it from the first sight, while its user becomes a reader only once the spec
    checks out (found reviewing this session's change: the spec was left an orphan)."""
    from offchain.workloads import compute_units

    s = setup
    intake, w, access, clock, snap = _intake(s, tmp_path)
    env = _envelope(s)
    spec_hex = w.blobs.put(env)
    access.record_put(s.user.address, spec_hex, len(env))
    job = _job(s.pool[3].address, spec_hex, compute_units(SPEC))
    job["class_id"] = 2
    snap.offers[2] = 0  # this provider offers no class-2 price yet: the job waits
    w.jobs[4] = job
    w.store.add_candidate(4)
    intake.consider(4, 0, snap)
    assert w.store.job(4)["state"] == "candidate"
    clock.t += 86400 + 1
    assert access.collect() == [] and w.blobs.has(spec_hex)
    assert not _reader(access, spec_hex, s.pool[3].address)
