"""OracleHub: M-of-N EIP-712 signed benchmark attestations, uptime reports and job verdicts.

Setup (module): nine funded accounts, sorted by address, each with `min_operator_stake` bonded
in the hub; the first three are operators and the threshold is 2. Operators sign with their
private keys through offchain/chain/reports.py (what the oracle service uses); anyone submits.
Negative tests match the exact revert string and check, through storage roots, that hub,
registry and token are untouched.
"""

from contextlib import contextmanager

import ape
import pytest
from conftest import storage_roots
from eth_abi import encode
from eth_account.messages import encode_typed_data
from eth_keys import keys
from eth_utils import keccak
from market_helpers import oracle_service

from offchain.chain import reports as R
from offchain.chain.deploy import DEFAULT_ADMIN_ROLE, role
from offchain.chain.jobs import JOB_ABI_TYPES
from offchain.constants import MAX_BPS, ONE_TOKEN, MachineStatus
from offchain.economics import rewards as RW
from offchain.params import OracleParams

ZERO = "0x" + "00" * 20
OP = OracleParams()
MIN_STAKE = OP.min_operator_stake
DAY = 86400
MAX_VALIDITY = 30 * DAY
UNBONDING = 14 * DAY
CPU = 1
H100 = 10
PROVIDER_STAKE = 1_000 * ONE_TOKEN  # what conftest's make_provider stakes
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
N_POOL = 9
PASS, MISREPORT, UNREACHABLE = (int(o) for o in R.Outcome)
PENDING = int(MachineStatus.PENDING)
ACTIVE = int(MachineStatus.ACTIVE)
JAILED = int(MachineStatus.JAILED)

# Gas ceilings for submit_attestation (PASS), ~5% above what the in-process EVM measured
# (M=2: 118k / 84k, M=3: 128k / 94k, M=5: 148k / 114k):
# {M: (first attestation of a machine, renewal)}. See test_gas__submit_attestation__by_signatures.
GAS_CEILING = {2: (125_000, 90_000), 3: (135_000, 100_000), 5: (156_000, 120_000)}


def _args(log):
    # `provider` clashes with ContractLog.provider: read event fields this way.
    return log.event_arguments


def _one(tx, event):
    logs = tx.decode_logs(event)
    assert len(logs) == 1, logs
    return _args(logs[0])


def A(report):
    return R.report_tuple(R.ATTESTATION_FIELDS, report)


def U(report):
    return R.report_tuple(R.UPTIME_FIELDS, report)


def attestation_subject(machine_id):
    return keccak(encode(["bytes32", "uint256"], [R.ATTESTATION_TYPEHASH, machine_id]))


def uptime_subject(epoch, machine_id):
    return keccak(encode(["bytes32", "uint256", "uint256"], [R.UPTIME_TYPEHASH, epoch, machine_id]))


def V(report):
    return R.report_tuple(R.VERDICT_FIELDS, report)


def verdict_subject(job_id):
    return keccak(encode(["bytes32", "uint256"], [R.VERDICT_TYPEHASH, job_id]))


# An all-zero IJobMarket.Job argument (only reached when a check before JobMarket refuses).
ZERO_JOB = tuple({"address": ZERO, "bytes32": b"\x00" * 32}.get(t, 0) for t in JOB_ABI_TYPES)


def split(sig):
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]


################################################################
#                            fixtures                          #
################################################################


@pytest.fixture(scope="module", autouse=True)
def _wider_fixtures_first(
    hub, chain, project, registry, token, market, roles, keeper, provider, provider2, user, attacker
):
    """Every session/module fixture this file uses, set up before the first test: ape's snapshot
    isolation warns and rebases when one is first set up inside a test."""


@pytest.fixture
def ops(hub, pool):
    return pool[:3]


@pytest.fixture
def outsider(hub, pool):
    """Staked in the hub, sorts after every operator, but not an operator."""
    return pool[3]


@pytest.fixture
def reverts(chain, hub, registry, token):
    @contextmanager
    def _reverts(message):
        before = storage_roots(chain, (hub, registry, token))
        with ape.reverts(message):
            yield
        assert storage_roots(chain, (hub, registry, token)) == before

    return _reverts


@pytest.fixture
def machine(make_provider, provider):
    """A Pending CPU machine of `provider` (PROVIDER_STAKE bonded): its id."""
    return make_provider(provider, activate=False, price=0)


@pytest.fixture
def new_report(chain, hub, provider):
    def _new(machine_id, **fields):
        now = chain.blocks.head.timestamp
        r = {
            "machine_id": machine_id,
            "provider": provider.address,
            "class_id": CPU,
            "outcome": PASS,
            "fp32_gflops": 1_200,
            "bf16_gflops": 0,
            "bandwidth_gbs": 45,
            "transcript_hash": b"\x7e" * 32,
            "measured_at": now,
            "valid_until": now + DAY,
            "nonce": hub.attestation_nonce(machine_id),
        }
        r.update(fields)
        return r

    return _new


@pytest.fixture
def new_uptime(hub):
    def _new(machine_id, epoch=7, probes=9, successes=7, **fields):
        r = {
            "epoch": epoch,
            "machine_id": machine_id,
            "probes": probes,
            "successes": successes,
            "nonce": hub.uptime_nonce(epoch, machine_id),
        }
        r.update(fields)
        return r

    return _new


JOB = 42  # a job id: verdict equivocation needs no real job


@pytest.fixture
def new_verdict(hub):
    def _new(job_id=JOB, **fields):
        r = {
            "job_id": job_id,
            "result_hash": b"\x3c" * 32,
            "valid": True,
            "evidence_hash": b"\x5e" * 32,
            "nonce": hub.verdict_nonce(job_id),
        }
        r.update(fields)
        return r

    return _new


@pytest.fixture
def typed(hub, chain):
    def _typed(report, kind="attestation", chain_id=None, hub_address=None):
        make = {
            "attestation": R.attestation_typed_data,
            "uptime": R.uptime_typed_data,
            "verdict": R.verdict_typed_data,
        }[kind]
        return make(hub_address or hub.address, chain.chain_id if chain_id is None else chain_id, report)

    return _typed


@pytest.fixture
def sign(typed):
    """Signatures of `signers` over the report, sorted by signer (ready to submit)."""

    def _sign(report, signers, kind="attestation", **domain):
        td = typed(report, kind, **domain)
        return R.sort_signatures([(a.address, R.sign_report(a.private_key, td)) for a in signers])

    return _sign


@pytest.fixture
def sig1(typed):
    """One signer's signature."""

    def _sig(report, signer, kind="attestation", **domain):
        return R.sign_report(signer.private_key, typed(report, kind, **domain))

    return _sig


################################################################
#               EIP-712: digests, domain, constants            #
################################################################


def test_attestation_digest__equals_independent_eip712(hub, chain, machine, new_report, provider):
    """The contract's digest equals one computed from scratch with eth_account's EIP-712 encoder."""
    report = new_report(machine, fp32_gflops=2**200, class_id=65535, outcome=2, transcript_hash=b"\x01" * 32)
    full = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "BenchmarkAttestation": [
                {"name": "machine_id", "type": "uint256"},
                {"name": "provider", "type": "address"},
                {"name": "class_id", "type": "uint16"},
                {"name": "outcome", "type": "uint8"},
                {"name": "fp32_gflops", "type": "uint256"},
                {"name": "bf16_gflops", "type": "uint256"},
                {"name": "bandwidth_gbs", "type": "uint256"},
                {"name": "transcript_hash", "type": "bytes32"},
                {"name": "measured_at", "type": "uint256"},
                {"name": "valid_until", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
            ],
        },
        "primaryType": "BenchmarkAttestation",
        "domain": {
            "name": "gpunet OracleHub",
            "version": "1",
            "chainId": chain.chain_id,
            "verifyingContract": hub.address,
        },
        "message": dict(report),
    }
    m = encode_typed_data(full_message=full)
    expected = keccak(b"\x19\x01" + m.header + m.body)
    assert bytes(hub.attestation_digest(A(report))) == expected
    assert bytes(hub.DOMAIN_SEPARATOR()) == m.header
    # The library helper agrees, and a field change changes the digest.
    assert R.typed_data_digest(R.attestation_typed_data(hub.address, chain.chain_id, report)) == expected
    assert bytes(hub.attestation_digest(A({**report, "nonce": 1}))) != expected


def test_uptime_digest__equals_library_eip712(hub, chain, machine, new_uptime):
    report = new_uptime(machine, epoch=2**64, probes=10, successes=3)
    td = R.uptime_typed_data(hub.address, chain.chain_id, report)
    assert bytes(hub.uptime_digest(U(report))) == R.typed_data_digest(td)


def test_verdict_digest__equals_library_eip712(hub, chain, new_verdict):
    report = new_verdict(job_id=2**200, valid=False, result_hash=b"\x01" * 32, nonce=5)
    td = R.verdict_typed_data(hub.address, chain.chain_id, report)
    assert bytes(hub.verdict_digest(V(report))) == R.typed_data_digest(td)
    assert bytes(hub.verdict_digest(V({**report, "valid": True}))) != R.typed_data_digest(td)


def test_domain_and_constants__match_python(hub, chain, registry, token, deployer, roles):
    d = hub.eip712Domain()
    assert (d[1], d[2], d[3], d[4]) == ("gpunet OracleHub", "1", chain.chain_id, hub.address)
    assert bytes(hub.ATTESTATION_TYPEHASH()) == R.ATTESTATION_TYPEHASH
    assert bytes(hub.UPTIME_TYPEHASH()) == R.UPTIME_TYPEHASH
    assert bytes(hub.VERDICT_TYPEHASH()) == R.VERDICT_TYPEHASH
    assert (hub.OUTCOME_PASS(), hub.OUTCOME_FAIL_MISREPORT(), hub.OUTCOME_FAIL_UNREACHABLE()) == (0, 1, 2)
    assert hub.MAX_OPERATORS() == 32
    assert hub.MAX_BPS() == MAX_BPS
    assert hub.MAX_ATTESTATION_SECONDS() == MAX_VALIDITY
    assert hub.OPERATOR_UNBONDING_SECONDS() == UNBONDING
    assert (hub.TOKEN(), hub.REGISTRY()) == (token.address, registry.address)
    assert (hub.min_operator_stake(), hub.hardware_slash_bps(), hub.equivocation_slash_bps()) == (
        OP.min_operator_stake,
        OP.hardware_slash_bps,
        OP.equivocation_slash_bps,
    )
    # deploy_all wires the hub into the registry and keeps governance with the deployer locally.
    assert registry.hasRole(roles["ATTESTER_ROLE"], hub)
    assert registry.hasRole(roles["SLASHER_ROLE"], hub)
    assert hub.hasRole(DEFAULT_ADMIN_ROLE, deployer)


def test_report_helpers__sort_and_recover(hub, chain, ops, machine, new_report):
    td = R.attestation_typed_data(hub.address, chain.chain_id, new_report(machine))
    signed = [(a.address.lower(), R.sign_report(a.private_key, td)) for a in reversed(ops)]
    ordered = R.sort_signatures(signed)
    assert [R.recover_signer(td, s) for s in ordered] == [a.address for a in ops]
    with pytest.raises(ValueError, match="duplicate signer"):
        R.sort_signatures(signed + [signed[0]])


################################################################
#                    submit_attestation: PASS                  #
################################################################


def test_submit_attestation__pass_two_of_three__machine_active_until_valid_until(
    hub, registry, chain, keeper, ops, machine, new_report, sign, provider
):
    report = new_report(machine)
    sigs = sign(report, ops[:2])
    td = R.attestation_typed_data(hub.address, chain.chain_id, report)
    tx = hub.submit_attestation(A(report), sigs, sender=keeper)  # anyone may submit
    assert _one(tx, hub.AttestationAccepted) == {
        "machine_id": machine,
        "provider": provider.address,
        "outcome": PASS,
        "class_id": CPU,
        "fp32_gflops": 1_200,
        "bf16_gflops": 0,
        "bandwidth_gbs": 45,
        "transcript_hash": b"\x7e" * 32,
        "valid_until": report["valid_until"],
        "nonce": 0,
        "slashed": 0,
        "signers": 2,
    }
    assert _one(tx, registry.AttestationRecorded) == {
        "machine_id": machine,
        "status": ACTIVE,
        "attested_until": report["valid_until"],
    }
    assert registry.machine_status(machine) == ACTIVE
    assert registry.attested_until(machine) == report["valid_until"]
    assert hub.attestation_nonce(machine) == 1
    assert hub.nonces(attestation_subject(machine)) == 1
    assert bytes(hub.attestation_hash(machine)) == encode_typed_data(full_message=td).body


def test_submit_attestation__all_three_sign__counts_three(hub, keeper, ops, machine, new_report, sign):
    report = new_report(machine)
    tx = hub.submit_attestation(A(report), sign(report, ops), sender=keeper)
    assert _one(tx, hub.AttestationAccepted)["signers"] == 3


def test_submit_attestation__renewal__next_nonce_extends_expiry(
    hub, registry, chain, keeper, ops, machine, new_report, sign
):
    first = new_report(machine)
    hub.submit_attestation(A(first), sign(first, ops[1:]), sender=keeper)
    chain.pending_timestamp += DAY // 2
    second = new_report(machine, valid_until=first["valid_until"] + DAY)
    assert second["nonce"] == 1
    tx = hub.submit_attestation(A(second), sign(second, ops[:2]), sender=keeper)
    assert _one(tx, hub.AttestationAccepted)["nonce"] == 1
    assert registry.attested_until(machine) == first["valid_until"] + DAY
    assert hub.attestation_nonce(machine) == 2


def test_submit_attestation__expired_then_renewed__market_accepts_again(
    reverts, hub, registry, market, chain, jobs, make_provider, make_job, keeper, ops, new_report, sign, provider, user
):
    """End to end: only an attested machine takes jobs, and only until its attestation expires."""
    mid = make_provider(provider, activate=False)
    report = new_report(mid, valid_until=chain.blocks.head.timestamp + 3600)
    hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)
    job_a, _ = make_job(user)
    jobs.track(market.accept(job_a, jobs.t(job_a), mid, sender=provider))
    chain.pending_timestamp = report["valid_until"] + 1
    job_b, _ = make_job(user)
    with ape.reverts("registry: attestation expired"):
        market.accept(job_b, jobs.t(job_b), mid, sender=provider)
    renewal = new_report(mid)
    hub.submit_attestation(A(renewal), sign(renewal, ops[1:]), sender=keeper)
    jobs.track(market.accept(job_b, jobs.t(job_b), mid, sender=provider))
    assert market.job_count() == 2


def test_submit_attestation__longest_validity__accepted(hub, registry, chain, keeper, ops, machine, new_report, sign):
    t = chain.blocks.head.timestamp + 100
    chain.pending_timestamp = t
    report = new_report(machine, measured_at=t, valid_until=t + MAX_VALIDITY)
    tx = hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)
    assert tx.timestamp == t
    assert registry.attested_until(machine) == t + MAX_VALIDITY


def test_submit_attestation__pass_on_jailed_machine__only_after_its_provider_asks(
    reverts, hub, registry, keeper, ops, machine, new_report, sign, provider
):
    fail = new_report(machine, outcome=UNREACHABLE)
    hub.submit_attestation(A(fail), sign(fail, ops[:2]), sender=keeper)
    assert registry.machine_status(machine) == JAILED
    ok = new_report(machine)
    with reverts("registry: machine jailed (its provider must request_attestation)"):
        hub.submit_attestation(A(ok), sign(ok, ops[:2]), sender=keeper)
    registry.request_attestation(machine, sender=provider)
    hub.submit_attestation(A(ok), sign(ok, ops[:2]), sender=keeper)
    assert registry.machine_status(machine) == ACTIVE


def test_attack_second_leader_fails_a_jailed_machine_again__one_slash(
    reverts, hub, registry, token, keeper, ops, machine, new_report, sign, provider
):
    """Two operators both see the machine Pending; the first one's FAIL (nonce 0) jails and
    slashes it; the second, still working from the Pending machine it indexed, has a quorum's
    FAIL at nonce 1 (the co-signers' challenges fail too). It must not slash a second time
    (CI of 1a010f7: 810 of 1,000 tokens left where 900 were due)."""
    stake = registry.slashable(provider)
    first = new_report(machine, outcome=MISREPORT, valid_until=0)
    hub.submit_attestation(A(first), sign(first, ops[:2]), sender=keeper)
    assert registry.slashable(provider) == stake - stake * OP.hardware_slash_bps // MAX_BPS
    second = new_report(machine, outcome=MISREPORT, valid_until=0)
    assert second["nonce"] == 1
    supply = token.totalSupply()
    with reverts("registry: machine jailed (its provider must request_attestation)"):
        hub.submit_attestation(A(second), sign(second, ops[1:]), sender=keeper)
    assert registry.slashable(provider) == stake - stake * OP.hardware_slash_bps // MAX_BPS
    assert (token.totalSupply(), hub.attestation_nonce(machine)) == (supply, 1)


################################################################
#                 submit_attestation: quorum checks            #
################################################################


def test_submit_attestation__single_operator__not_enough_signatures(
    reverts, hub, registry, keeper, ops, machine, new_report, sign
):
    report = new_report(machine)
    for signer in ops:
        with reverts("oracle_hub: not enough signatures"):
            hub.submit_attestation(A(report), sign(report, [signer]), sender=signer)
    with reverts("oracle_hub: not enough signatures"):
        hub.submit_attestation(A(report), [], sender=keeper)
    assert registry.machine_status(machine) == PENDING
    assert hub.attestation_nonce(machine) == 0


def test_submit_attestation__replay__wrong_nonce(reverts, hub, keeper, attacker, ops, machine, new_report, sign):
    report = new_report(machine)
    sigs = sign(report, ops[:2])
    hub.submit_attestation(A(report), sigs, sender=keeper)
    with reverts("oracle_hub: wrong nonce"):
        hub.submit_attestation(A(report), sigs, sender=attacker)
    assert hub.attestation_nonce(machine) == 1


def test_submit_attestation__future_nonce__wrong_nonce(reverts, hub, keeper, ops, machine, new_report, sign):
    report = new_report(machine, nonce=1)
    with reverts("oracle_hub: wrong nonce"):
        hub.submit_attestation(A(report), sign(report, ops), sender=keeper)


@pytest.mark.parametrize("order", ["duplicate", "descending"])
def test_submit_attestation__signers_not_increasing__reverts(
    reverts, hub, keeper, ops, machine, new_report, sig1, order
):
    report = new_report(machine)
    s0, s1 = sig1(report, ops[0]), sig1(report, ops[1])
    sigs = [s0, s0] if order == "duplicate" else [s1, s0]
    with reverts("oracle_hub: signers not strictly increasing"):
        hub.submit_attestation(A(report), sigs, sender=keeper)


def test_submit_attestation__non_operator_signer__reverts(
    reverts, hub, keeper, ops, outsider, machine, new_report, sign
):
    """A staked non-operator never counts, and every signature is checked even past the threshold."""
    report = new_report(machine)
    assert hub.operator_stake(outsider) >= MIN_STAKE and not hub.is_operator(outsider)
    with reverts("oracle_hub: signer is not an operator"):
        hub.submit_attestation(A(report), sign(report, [ops[0], outsider]), sender=keeper)
    with reverts("oracle_hub: signer is not an operator"):
        hub.submit_attestation(A(report), sign(report, [ops[0], ops[1], outsider]), sender=keeper)


def test_submit_attestation__signer_stake_too_low__reverts(
    reverts, hub, deployer, keeper, ops, machine, new_report, sign
):
    report = new_report(machine)
    hub.request_unstake(1, sender=ops[1])  # one wei below the minimum
    with reverts("oracle_hub: signer stake too low"):
        hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)
    # The two others still make a quorum; raising the minimum then locks everyone out.
    hub.submit_attestation(A(report), sign(report, [ops[0], ops[2]]), sender=keeper)
    hub.set_params(MIN_STAKE + 1, OP.hardware_slash_bps, OP.equivocation_slash_bps, sender=deployer)
    renewal = new_report(machine)
    with reverts("oracle_hub: signer stake too low"):
        hub.submit_attestation(A(renewal), sign(renewal, [ops[0], ops[2]]), sender=keeper)


def test_submit_attestation__compact_64_byte_signature__reverts(reverts, hub, keeper, ops, machine, new_report, sig1):
    """An EIP-2098 (r, vs) signature is refused: it would be a second encoding of the same one."""
    report = new_report(machine)
    r, s, v = split(sig1(report, ops[0]))
    compact = r.to_bytes(32, "big") + (s | ((v - 27) << 255)).to_bytes(32, "big")
    with reverts("oracle_hub: signature must be 65 bytes"):
        hub.submit_attestation(A(report), [compact, sig1(report, ops[1])], sender=keeper)


@pytest.mark.parametrize("kind", ["zeros", "v_29", "empty"])
def test_submit_attestation__garbage_signature__reverts(reverts, hub, keeper, ops, machine, new_report, sig1, kind):
    report = new_report(machine)
    good = sig1(report, ops[0])
    bad = {"zeros": b"\x00" * 65, "v_29": good[:64] + bytes([29]), "empty": b""}[kind]
    message = "oracle_hub: signature must be 65 bytes" if kind == "empty" else "ecdsa: invalid signature"
    with reverts(message):
        hub.submit_attestation(A(report), [bad, sig1(report, ops[1])], sender=keeper)


def test_submit_attestation__high_s_malleated_signature__reverts(
    reverts, hub, chain, keeper, ops, machine, new_report, sig1
):
    report = new_report(machine)
    r, s, v = split(sig1(report, ops[0]))
    s_high, v_flip = SECP256K1_N - s, 55 - v
    # Mathematically valid for the same signer: only the low-s rule rejects it.
    digest = bytes(hub.attestation_digest(A(report)))
    pub = keys.Signature(vrs=(v_flip - 27, r, s_high)).recover_public_key_from_msg_hash(digest)
    assert pub.to_checksum_address() == ops[0].address
    malleated = r.to_bytes(32, "big") + s_high.to_bytes(32, "big") + bytes([v_flip])
    with reverts("ecdsa: invalid signature `s` value"):
        hub.submit_attestation(A(report), [malleated, sig1(report, ops[1])], sender=keeper)


@pytest.mark.parametrize("domain", ["other_chain", "other_contract"])
def test_submit_attestation__signed_for_another_domain__not_an_operator(
    reverts, hub, chain, registry, keeper, ops, machine, new_report, sig1, domain
):
    """A signature over another domain recovers to an unrelated address (put first so only the
    operator check can catch it)."""
    report = new_report(machine)
    other = {"chain_id": chain.chain_id + 1} if domain == "other_chain" else {"hub_address": registry.address}
    foreign = sig1(report, ops[0], **other)
    with reverts("oracle_hub: signer is not an operator"):
        hub.submit_attestation(A(report), [foreign, sig1(report, ops[1])], sender=keeper)


def test_submit_attestation__quorum_misconfigured__refuses_everything(
    reverts, hub, deployer, keeper, ops, pool, machine, new_report, new_uptime, sign
):
    report = new_report(machine)
    hub.set_threshold(1, sender=deployer)  # 1 of 3: two disjoint "quorums" could exist
    with reverts("oracle_hub: quorum misconfigured"):
        hub.submit_attestation(A(report), sign(report, ops), sender=keeper)
    up = new_uptime(machine)
    with reverts("oracle_hub: quorum misconfigured"):
        hub.submit_uptime(U(up), sign(up, ops, "uptime"), sender=keeper)
    # 2 of 4 is misconfigured too; 3 of 4 works.
    hub.set_threshold(2, sender=deployer)
    hub.add_operator(pool[3], sender=deployer)
    sigs = sign(report, pool[:4])
    with reverts("oracle_hub: quorum misconfigured"):
        hub.submit_attestation(A(report), sigs, sender=keeper)
    hub.set_threshold(3, sender=deployer)
    with reverts("oracle_hub: not enough signatures"):
        hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)
    tx = hub.submit_attestation(A(report), sigs, sender=keeper)
    assert _one(tx, hub.AttestationAccepted)["signers"] == 4


def test_submit_attestation__removed_operator__signature_no_longer_counts(
    reverts, hub, deployer, keeper, ops, machine, new_report, sign
):
    hub.remove_operator(ops[2], sender=deployer)
    report = new_report(machine)
    with reverts("oracle_hub: signer is not an operator"):
        hub.submit_attestation(A(report), sign(report, ops[1:]), sender=keeper)
    hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)  # 2 of 2 remain


################################################################
#                submit_attestation: failures, checks          #
################################################################


def test_submit_attestation__fail_misreport__jailed_and_slashed_burned(
    hub, registry, token, keeper, ops, machine, new_report, sign, provider
):
    hub.submit_attestation(A(new_report(machine)), sign(new_report(machine), ops[:2]), sender=keeper)
    registry.request_unstake(400 * ONE_TOKEN, sender=provider)  # unbonding stays slashable
    slashable = registry.slashable(provider)
    assert slashable == PROVIDER_STAKE
    expected = slashable * OP.hardware_slash_bps // MAX_BPS
    supply, reg_bal = token.totalSupply(), token.balanceOf(registry)
    report = new_report(machine, outcome=MISREPORT, fp32_gflops=3, valid_until=0)
    tx = hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)
    ev = _one(tx, hub.AttestationAccepted)
    assert (ev["outcome"], ev["slashed"], ev["signers"], ev["fp32_gflops"]) == (MISREPORT, expected, 2, 3)
    assert _one(tx, registry.Slashed) == {
        "provider": provider.address,
        "amount": expected,
        "reason": keccak(text="HARDWARE_MISREPORT"),
        "beneficiary": ZERO,
        "slasher": hub.address,
    }
    assert registry.machine_status(machine) == JAILED
    assert registry.attested_until(machine) == 0
    assert registry.slashable(provider) == slashable - expected
    assert token.totalSupply() == supply - expected
    assert token.balanceOf(registry) == reg_bal - expected
    assert hub.attestation_nonce(machine) == 2


def test_oracle_service__jailed_machine__no_report_drawn_up_or_cosigned(
    tmp_path, deployment, hub, chain, keeper, ops, machine, new_report, sign, provider
):
    """The operators' half of the test above: once a peer's FAIL has jailed the machine, a
    leader working from its index's stale Pending entry runs no challenge and proposes nothing,
    and a peer refuses to co-sign (before: both challenged the machine and signed a second FAIL)."""
    first = new_report(machine, outcome=MISREPORT, valid_until=0)
    hub.submit_attestation(A(first), sign(first, ops[:2]), sender=keeper)
    svc = oracle_service(tmp_path, deployment, chain, ops[0])
    leader = svc.leader_for(machine, 1, 0)
    svc = oracle_service(tmp_path, deployment, chain, next(o for o in ops if o.address == leader))
    now = chain.blocks.head.timestamp
    stale = {"machine_id": machine, "provider": provider.address, "class_id": CPU, "status": PENDING,
             "endpoint": "http://127.0.0.1:9", "vram_mb": 1024, "attested_until": 0, "first_seen": now}  # fmt: skip
    assert svc._needs_attestation(stale, now)
    svc.attest(stale, now, now)
    assert svc.hw.own(machine, 1) is None  # no challenge run
    second = {**new_report(machine, outcome=MISREPORT, valid_until=0), "transcript_hash": "0x" + "7e" * 32}
    assert svc.handle_sign_attestation(second) == (
        409,
        {"refused": "machine jailed: it takes no attestation until its provider requests one"},
    )
    assert svc.hw.own(machine, 1) is None


def test_submit_attestation__fail_misreport_nothing_staked__jails_without_slash(
    hub, registry, token, keeper, ops, make_provider, new_report, sign, provider2
):
    mid = make_provider(provider2, stake=0, activate=False, price=0)
    report = new_report(mid, provider=provider2.address, outcome=MISREPORT)
    supply = token.totalSupply()
    tx = hub.submit_attestation(A(report), sign(report, ops[:2]), sender=provider2)
    assert _one(tx, hub.AttestationAccepted)["slashed"] == 0
    assert not tx.decode_logs(registry.Slashed)
    assert registry.machine_status(mid) == JAILED
    assert token.totalSupply() == supply


def test_submit_attestation__fail_unreachable__jailed_no_slash(
    hub, registry, token, keeper, ops, machine, new_report, sign, provider
):
    supply = token.totalSupply()
    report = new_report(machine, outcome=UNREACHABLE, fp32_gflops=0, bandwidth_gbs=0)
    tx = hub.submit_attestation(A(report), sign(report, ops[1:]), sender=keeper)
    ev = _one(tx, hub.AttestationAccepted)
    assert (ev["outcome"], ev["slashed"]) == (UNREACHABLE, 0)
    assert not tx.decode_logs(registry.Slashed)
    assert registry.machine_status(machine) == JAILED
    assert registry.slashable(provider) == PROVIDER_STAKE
    assert token.totalSupply() == supply
    assert hub.attestation_nonce(machine) == 1


@pytest.mark.parametrize("outcome", [3, 255])
def test_submit_attestation__invalid_outcome__reverts(reverts, hub, keeper, ops, machine, new_report, sign, outcome):
    report = new_report(machine, outcome=outcome)
    with reverts("oracle_hub: invalid outcome"):
        hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)


def test_submit_attestation__provider_mismatch__reverts(
    reverts, hub, keeper, ops, machine, new_report, sign, provider2
):
    report = new_report(machine, provider=provider2.address)
    with reverts("oracle_hub: provider mismatch"):
        hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)


def test_submit_attestation__unknown_machine__registry_reverts(reverts, hub, keeper, ops, new_report, sign):
    report = new_report(99, provider=ZERO)  # passes the provider check, the registry refuses it
    with reverts("registry: unknown machine"):
        hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)


def test_submit_attestation__class_mismatch__registry_reverts(reverts, hub, keeper, ops, machine, new_report, sign):
    report = new_report(machine, class_id=H100)
    with reverts("registry: class mismatch"):
        hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)


def test_submit_attestation__measured_in_future__reverts(reverts, hub, chain, keeper, ops, machine, new_report, sign):
    report = new_report(machine, measured_at=chain.pending_timestamp + 60)
    with reverts("oracle_hub: measured in the future"):
        hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)


def test_submit_attestation__pass_already_expired__reverts(reverts, hub, chain, keeper, ops, machine, new_report, sign):
    for valid_until in (0, chain.blocks.head.timestamp):
        report = new_report(machine, valid_until=valid_until)
        with reverts("oracle_hub: attestation already expired"):
            hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)
    t = chain.blocks.head.timestamp + 50
    chain.pending_timestamp = t
    report = new_report(machine, valid_until=t)  # == block.timestamp
    with reverts("oracle_hub: attestation already expired"):
        hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)


def test_submit_attestation__pass_validity_too_long__reverts(
    reverts, hub, chain, keeper, ops, machine, new_report, sign
):
    t = chain.blocks.head.timestamp + 50
    chain.pending_timestamp = t
    report = new_report(machine, valid_until=t + MAX_VALIDITY + 1)
    with reverts("oracle_hub: validity too long"):
        hub.submit_attestation(A(report), sign(report, ops[:2]), sender=keeper)


################################################################
#                          submit_uptime                       #
################################################################


@pytest.mark.parametrize("probes,successes,bps", [(9, 7, 7_777), (6, 6, MAX_BPS), (5, 0, 0), (1, 1, MAX_BPS)])
def test_submit_uptime__quorum__records_bps(hub, keeper, ops, machine, new_uptime, sign, probes, successes, bps):
    report = new_uptime(machine, probes=probes, successes=successes)
    tx = hub.submit_uptime(U(report), sign(report, ops[:2], "uptime"), sender=keeper)
    assert _one(tx, hub.UptimeRecorded) == {
        "epoch": 7,
        "machine_id": machine,
        "probes": probes,
        "successes": successes,
        "uptime_bps": bps,
    }
    assert hub.uptime_bps(7, machine) == bps
    assert hub.uptime_nonce(7, machine) == 1
    assert hub.nonces(uptime_subject(7, machine)) == 1
    assert hub.uptime_nonce(8, machine) == 0


def test_submit_uptime__once_per_epoch__second_reverts(reverts, hub, keeper, ops, machine, new_uptime, sign):
    first = new_uptime(machine)
    hub.submit_uptime(U(first), sign(first, ops[:2], "uptime"), sender=keeper)
    again = new_uptime(machine, successes=9, nonce=0)
    with reverts("oracle_hub: uptime already reported"):
        hub.submit_uptime(U(again), sign(again, ops, "uptime"), sender=keeper)
    assert hub.uptime_bps(7, machine) == 7_777
    # Other epochs and machines are separate subjects.
    other = new_uptime(machine, epoch=8)
    hub.submit_uptime(U(other), sign(other, ops[:2], "uptime"), sender=keeper)
    assert hub.uptime_bps(8, machine) == 7_777


def test_submit_uptime__successes_above_probes__reverts(reverts, hub, keeper, ops, machine, new_uptime, sign):
    report = new_uptime(machine, probes=4, successes=5)
    with reverts("oracle_hub: more successes than probes"):
        hub.submit_uptime(U(report), sign(report, ops[:2], "uptime"), sender=keeper)


def test_submit_uptime__unknown_machine__reverts(reverts, hub, keeper, ops, machine, new_uptime, sign):
    report = new_uptime(machine + 1000)
    with reverts("oracle_hub: unknown machine"):
        hub.submit_uptime(U(report), sign(report, ops[:2], "uptime"), sender=keeper)


def test_submit_uptime__no_probes__reverts(reverts, hub, keeper, ops, machine, new_uptime, sign):
    report = new_uptime(machine, probes=0, successes=0)
    with reverts("oracle_hub: no probes"):
        hub.submit_uptime(U(report), sign(report, ops[:2], "uptime"), sender=keeper)


def test_submit_uptime__one_signature__reverts(reverts, hub, keeper, ops, machine, new_uptime, sign):
    report = new_uptime(machine)
    with reverts("oracle_hub: not enough signatures"):
        hub.submit_uptime(U(report), sign(report, ops[:1], "uptime"), sender=keeper)


def test_submit_uptime__attestation_signature__not_an_operator(
    reverts, hub, keeper, ops, machine, new_report, new_uptime, sig1
):
    """Signatures are bound to their type: an attestation signature does not sign an uptime report."""
    up = new_uptime(machine)
    wrong_type = sig1(new_report(machine), ops[0])
    with reverts("oracle_hub: signer is not an operator"):
        hub.submit_uptime(U(up), [wrong_type, sig1(up, ops[1], "uptime")], sender=keeper)


################################################################
#                         equivocation                         #
################################################################


def test_prove_attestation_equivocation__slashes_stake_and_unbonding_removes_operator(
    hub, token, chain, keeper, ops, machine, new_report, sig1
):
    op = ops[0]
    hub.request_unstake(800 * ONE_TOKEN, sender=op)  # unbonding stays slashable
    assert (hub.operator_stake(op), hub.operator_unbonding(op)) == (200 * ONE_TOKEN, 800 * ONE_TOKEN)
    a = new_report(machine)
    b = new_report(machine, valid_until=a["valid_until"] + 1)
    sig_a, sig_b = sig1(a, op), sig1(b, op)
    amount = MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS
    assert hub.prove_attestation_equivocation.call(A(a), sig_a, A(b), sig_b, sender=keeper) == amount
    supply, bal, hub_bal = token.totalSupply(), token.balanceOf(keeper), token.balanceOf(hub)
    tx = hub.prove_attestation_equivocation(A(a), sig_a, A(b), sig_b, sender=keeper)
    assert _one(tx, hub.EquivocationProven) == {
        "operator": op.address,
        "reporter": keeper.address,
        "subject": attestation_subject(machine),
        "nonce": 0,
        "slashed": amount,
    }
    assert _one(tx, hub.OperatorRemoved) == {"operator": op.address}
    # 200 from stake, the other 300 from unbonding.
    assert (hub.operator_stake(op), hub.operator_unbonding(op)) == (0, MIN_STAKE - amount)
    assert not hub.is_operator(op)
    assert hub.operator_count() == 2
    # All of it burned: no bounty to the submitter.
    assert token.balanceOf(keeper) == bal
    assert token.totalSupply() == supply - amount
    assert token.balanceOf(hub) == hub_bal - amount


def test_prove_attestation_equivocation__same_proof_twice__reverts(
    reverts, hub, keeper, attacker, ops, machine, new_report, sig1
):
    """One equivocation is punished once: replaying the proof must not drain the rest."""
    op = ops[1]
    a = new_report(machine)
    b = new_report(machine, fp32_gflops=1)
    args = (A(a), sig1(a, op), A(b), sig1(b, op))
    hub.prove_attestation_equivocation(*args, sender=keeper)
    left = hub.operator_stake(op)
    assert left == MIN_STAKE - MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS
    with reverts("oracle_hub: equivocation already proven"):
        hub.prove_attestation_equivocation(*args, sender=attacker)
    c = new_report(machine, fp32_gflops=2)  # a third version of the same nonce: same offence
    with reverts("oracle_hub: equivocation already proven"):
        hub.prove_attestation_equivocation(A(a), sig1(a, op), A(c), sig1(c, op), sender=attacker)
    assert hub.operator_stake(op) == left


def test_prove_attestation_equivocation__consumed_nonce__still_provable(
    hub, keeper, ops, machine, new_report, sign, sig1
):
    """Equivocation about a report that already took effect is still punished."""
    a = new_report(machine)
    hub.submit_attestation(A(a), sign(a, ops[:2]), sender=keeper)
    b = new_report(machine, nonce=0, outcome=UNREACHABLE)
    tx = hub.prove_attestation_equivocation(A(a), sig1(a, ops[0]), A(b), sig1(b, ops[0]), sender=keeper)
    assert _one(tx, hub.EquivocationProven)["operator"] == ops[0].address


def test_prove_attestation_equivocation__identical__reverts(reverts, hub, keeper, ops, machine, new_report, sig1):
    a = new_report(machine)
    s = sig1(a, ops[0])
    with reverts("oracle_hub: reports are identical"):
        hub.prove_attestation_equivocation(A(a), s, A(a), s, sender=keeper)


def test_prove_attestation_equivocation__different_signers__reverts(
    reverts, hub, keeper, ops, machine, new_report, sig1
):
    a = new_report(machine)
    b = new_report(machine, bandwidth_gbs=1)
    with reverts("oracle_hub: different signers"):
        hub.prove_attestation_equivocation(A(a), sig1(a, ops[0]), A(b), sig1(b, ops[1]), sender=keeper)


def test_prove_attestation_equivocation__different_subject_or_nonce__reverts(
    reverts, hub, keeper, ops, machine, new_report, sig1
):
    a = new_report(machine)
    for b, message in (
        (new_report(machine + 1), "oracle_hub: different subjects"),
        (new_report(machine, nonce=1), "oracle_hub: different nonces"),
    ):
        with reverts(message):
            hub.prove_attestation_equivocation(A(a), sig1(a, ops[0]), A(b), sig1(b, ops[0]), sender=keeper)


def test_prove_attestation_equivocation__unstaked_stranger__reverts(
    reverts, hub, keeper, attacker, machine, new_report, sig1
):
    a = new_report(machine)
    b = new_report(machine, bandwidth_gbs=1)
    with reverts("oracle_hub: signer is not an operator"):
        hub.prove_attestation_equivocation(A(a), sig1(a, attacker), A(b), sig1(b, attacker), sender=keeper)


def test_prove_attestation_equivocation__removed_operator_still_unbonding__slashed(
    hub, deployer, keeper, ops, machine, new_report, sig1
):
    """Leaving the set does not escape: stake and unbonding stay slashable."""
    op = ops[2]
    hub.remove_operator(op, sender=deployer)
    hub.request_unstake(MIN_STAKE, sender=op)
    a = new_report(machine)
    b = new_report(machine, bandwidth_gbs=1)
    tx = hub.prove_attestation_equivocation(A(a), sig1(a, op), A(b), sig1(b, op), sender=keeper)
    assert _one(tx, hub.EquivocationProven)["slashed"] == MIN_STAKE // 2
    assert not tx.decode_logs(hub.OperatorRemoved)
    assert hub.operator_unbonding(op) == MIN_STAKE // 2
    assert hub.operator_count() == 2


def test_prove_uptime_equivocation__slashes_and_removes(hub, token, keeper, ops, machine, new_uptime, sig1):
    op = ops[1]
    a = new_uptime(machine, successes=9)
    b = new_uptime(machine, successes=2)
    supply = token.totalSupply()
    tx = hub.prove_uptime_equivocation(U(a), sig1(a, op, "uptime"), U(b), sig1(b, op, "uptime"), sender=keeper)
    amount = MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS
    assert _one(tx, hub.EquivocationProven) == {
        "operator": op.address,
        "reporter": keeper.address,
        "subject": uptime_subject(7, machine),
        "nonce": 0,
        "slashed": amount,
    }
    assert hub.operator_stake(op) == MIN_STAKE - amount
    assert not hub.is_operator(op)
    assert token.totalSupply() == supply - amount


def test_prove_uptime_equivocation__invalid_pairs__revert(reverts, hub, keeper, ops, machine, new_uptime, sig1):
    a = new_uptime(machine)
    sa = sig1(a, ops[0], "uptime")
    cases = [
        (new_uptime(machine, epoch=8), ops[0], "oracle_hub: different subjects"),
        (new_uptime(machine + 1), ops[0], "oracle_hub: different subjects"),
        (new_uptime(machine, nonce=1), ops[0], "oracle_hub: different nonces"),
        (a, ops[0], "oracle_hub: reports are identical"),
        (new_uptime(machine, successes=1), ops[1], "oracle_hub: different signers"),
    ]
    for b, signer, message in cases:
        with reverts(message):
            hub.prove_uptime_equivocation(U(a), sa, U(b), sig1(b, signer, "uptime"), sender=keeper)


def test_prove_verdict_equivocation__slashes_burns_all_and_removes(hub, token, keeper, ops, new_verdict, sig1):
    """One operator signs "valid" and "invalid" for the same job and nonce: it loses
    `equivocation_slash_bps` of its stake, all burned (no bounty), and leaves the set."""
    op = ops[2]
    a = new_verdict(valid=True)
    b = new_verdict(valid=False)
    sig_a, sig_b = sig1(a, op, "verdict"), sig1(b, op, "verdict")
    amount = MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS
    assert amount > 0
    assert hub.prove_verdict_equivocation.call(V(a), sig_a, V(b), sig_b, sender=keeper) == amount
    supply, bal, hub_bal = token.totalSupply(), token.balanceOf(keeper), token.balanceOf(hub)
    tx = hub.prove_verdict_equivocation(V(a), sig_a, V(b), sig_b, sender=keeper)
    assert _one(tx, hub.EquivocationProven) == {
        "operator": op.address,
        "reporter": keeper.address,
        "subject": verdict_subject(JOB),
        "nonce": 0,
        "slashed": amount,
    }
    assert _one(tx, hub.OperatorRemoved) == {"operator": op.address}
    assert (hub.operator_stake(op), hub.operator_unbonding(op)) == (MIN_STAKE - amount, 0)
    assert not hub.is_operator(op)
    assert hub.operator_count() == 2
    # All of it burned: no bounty to the submitter.
    assert token.balanceOf(keeper) == bal
    assert token.totalSupply() == supply - amount
    assert token.balanceOf(hub) == hub_bal - amount
    # A proof is not a report: the verdict nonce does not move.
    assert hub.verdict_nonce(JOB) == 0
    assert hub.nonces(verdict_subject(JOB)) == 0


@pytest.mark.parametrize(
    "field,value",
    [("result_hash", b"\x3d" * 32), ("evidence_hash", b"\x00" * 32), ("valid", False)],
)
def test_prove_verdict_equivocation__any_differing_field__slashed(hub, keeper, ops, new_verdict, sig1, field, value):
    op = ops[0]
    a = new_verdict(nonce=3)
    b = new_verdict(nonce=3, **{field: value})
    tx = hub.prove_verdict_equivocation(V(a), sig1(a, op, "verdict"), V(b), sig1(b, op, "verdict"), sender=keeper)
    ev = _one(tx, hub.EquivocationProven)
    assert (ev["operator"], ev["nonce"], ev["subject"]) == (op.address, 3, verdict_subject(JOB))
    assert ev["slashed"] == MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS


def test_prove_verdict_equivocation__same_proof_twice__reverts(reverts, hub, keeper, attacker, ops, new_verdict, sig1):
    """One equivocation is punished once: replaying the proof (or a third version) must not drain the rest."""
    op = ops[1]
    a = new_verdict()
    b = new_verdict(valid=False)
    args = (V(a), sig1(a, op, "verdict"), V(b), sig1(b, op, "verdict"))
    hub.prove_verdict_equivocation(*args, sender=keeper)
    left = hub.operator_stake(op)
    assert left == MIN_STAKE - MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS
    with reverts("oracle_hub: equivocation already proven"):
        hub.prove_verdict_equivocation(*args, sender=attacker)
    with reverts("oracle_hub: equivocation already proven"):
        hub.prove_verdict_equivocation(args[2], args[3], args[0], args[1], sender=attacker)  # swapped
    c = new_verdict(evidence_hash=b"\x01" * 32)
    with reverts("oracle_hub: equivocation already proven"):
        hub.prove_verdict_equivocation(args[0], args[1], V(c), sig1(c, op, "verdict"), sender=attacker)
    assert hub.operator_stake(op) == left


def test_prove_verdict_equivocation__same_operator_other_job__separate_offence(hub, keeper, ops, new_verdict, sig1):
    """The offence is per (signer, subject, nonce): a second job's equivocation slashes again,
    from the operator's remaining stake, even though it already left the set."""
    op = ops[0]
    first = MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS
    for job_id, expected in ((JOB, first), (JOB + 1, (MIN_STAKE - first) * OP.equivocation_slash_bps // MAX_BPS)):
        a = new_verdict(job_id)
        b = new_verdict(job_id, valid=False)
        tx = hub.prove_verdict_equivocation(V(a), sig1(a, op, "verdict"), V(b), sig1(b, op, "verdict"), sender=keeper)
        assert _one(tx, hub.EquivocationProven)["slashed"] == expected
    assert hub.operator_stake(op) == MIN_STAKE - first - expected
    assert hub.operator_count() == 2


################################################################
#     attacks: oracle findings (docs/SECURITY.md, contracts v2)  #
################################################################


def _wealth(token, hub, *accounts):
    """Tokens held plus tokens bonded or unbonding in the hub."""
    return sum(token.balanceOf(a) + hub.operator_stake(a) + hub.operator_unbonding(a) for a in accounts)


def test_attack_equivocator_reports_itself(hub, token, ops, pool, new_verdict, new_uptime, machine, sig1):
    """Finding 2: the proof's submitter used to get half of the slash, so an equivocator that
    submitted its own proof (or through a second address) lost 25% of its stake, not the 50%
    documented. Now the slash is burned in full: it loses exactly `equivocation_slash_bps`,
    whoever submits."""
    op, second = ops[0], pool[5]
    amount = MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS
    a, b = new_verdict(valid=True), new_verdict(valid=False)
    before = _wealth(token, hub, op, second)
    hub.prove_verdict_equivocation(V(a), sig1(a, op, "verdict"), V(b), sig1(b, op, "verdict"), sender=second)
    assert before - _wealth(token, hub, op, second) == amount
    # Its own address as the submitter: the same loss, on its remaining stake.
    a, b = new_uptime(machine, successes=1), new_uptime(machine, successes=2)
    left = hub.operator_stake(op)
    before = _wealth(token, hub, op)
    hub.prove_uptime_equivocation(U(a), sig1(a, op, "uptime"), U(b), sig1(b, op, "uptime"), sender=op)
    assert before - _wealth(token, hub, op) == left * OP.equivocation_slash_bps // MAX_BPS


def _rewards(epoch=3, root=b"\x11" * 32, total_work=1_000, total_availability=500, nonce=0):
    return {"epoch": epoch, "root": root, "total_work": total_work, "total_availability": total_availability,
            "nonce": nonce}  # fmt: skip


def test_attack_equivocate_on_epoch_rewards(hub, deployment, token, chain, keeper, ops, reverts):
    """Finding 3: an operator signing two different rewards roots for one epoch (the report that
    mints emissions) was not slashable: only verdicts, attestations and uptime were. Now the two
    signatures, under Emissions' domain, slash it like any other equivocation, once."""
    em = deployment.emissions
    assert (hub.emissions(), hub.price_feed()) == (em.address, deployment.price_feed.address)
    op = ops[1]

    def sig(r, signer=op, where=em.address):
        return R.sign_report(signer.private_key, RW.rewards_typed_data(where, chain.chain_id, r))

    a, b = _rewards(), _rewards(root=b"\x22" * 32)
    assert bytes(em.rewards_digest(RW.report_tuple(a))) == R.typed_data_digest(
        RW.rewards_typed_data(em.address, chain.chain_id, a)
    )
    amount = MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS
    supply = token.totalSupply()
    tx = hub.prove_rewards_equivocation(RW.report_tuple(a), sig(a), RW.report_tuple(b), sig(b), sender=keeper)
    assert _one(tx, hub.EquivocationProven) == {
        "operator": op.address,
        "reporter": keeper.address,
        "subject": keccak(encode(["bytes32", "uint256"], [RW.REWARDS_TYPEHASH, 3])),
        "nonce": 0,
        "slashed": amount,
    }
    assert not hub.is_operator(op) and hub.operator_stake(op) == MIN_STAKE - amount
    assert token.totalSupply() == supply - amount
    c = _rewards(total_work=1)
    with reverts("oracle_hub: equivocation already proven"):
        hub.prove_rewards_equivocation(RW.report_tuple(a), sig(a), RW.report_tuple(c), sig(c), sender=keeper)


def test_prove_rewards_equivocation__invalid_pairs__revert(hub, deployment, chain, keeper, ops, reverts):
    em = deployment.emissions

    def sig(r, signer=ops[0], where=em.address):
        return R.sign_report(signer.private_key, RW.rewards_typed_data(where, chain.chain_id, r))

    a = _rewards()
    cases = [
        (_rewards(epoch=4, root=b"\x22" * 32), sig, "oracle_hub: different subjects"),
        (_rewards(nonce=1, root=b"\x22" * 32), sig, "oracle_hub: different nonces"),
        (a, sig, "oracle_hub: reports are identical"),
        (_rewards(root=b"\x22" * 32), lambda r: sig(r, ops[1]), "oracle_hub: different signers"),
        # Signed under another domain (the hub's): recovers to some other address.
        (_rewards(root=b"\x22" * 32), lambda r: sig(r, where=hub.address), "oracle_hub: different signers"),
    ]
    for b, signer, message in cases:
        with reverts(message):
            hub.prove_rewards_equivocation(RW.report_tuple(a), sig(a), RW.report_tuple(b), signer(b), sender=keeper)


def test_attack_equivocate_on_price_observation(hub, deployment, token, chain, keeper, ops, reverts):
    """Finding 3: an operator signing two different observations for one price round (a leader
    could pick whichever suits it) was not slashable. Now it is, under PriceFeed's domain; the
    oracle service signs one observation per round id, ever (abandoned ids are skipped)."""
    feed = deployment.price_feed
    op = ops[2]
    t = chain.blocks.head.timestamp

    def sig(o, signer=op):
        return R.sign_report(signer.private_key, R.price_typed_data(feed.address, chain.chain_id, o))

    def P(o):
        return R.report_tuple(R.PRICE_FIELDS, o)

    a = {"round_id": 5, "price": 10**8, "observed_at": t}
    b = {"round_id": 5, "price": 10**8, "observed_at": t + 1}  # any differing field
    amount = MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS
    supply = token.totalSupply()
    tx = hub.prove_observation_equivocation(P(a), sig(a), P(b), sig(b), sender=keeper)
    assert _one(tx, hub.EquivocationProven) == {
        "operator": op.address,
        "reporter": keeper.address,
        "subject": keccak(encode(["bytes32", "uint256"], [R.PRICE_TYPEHASH, 5])),
        "nonce": 5,
        "slashed": amount,
    }
    assert not hub.is_operator(op) and token.totalSupply() == supply - amount
    other = {"round_id": 6, "price": 2 * 10**8, "observed_at": t}
    with reverts("oracle_hub: different subjects"):
        hub.prove_observation_equivocation(P(a), sig(a, ops[0]), P(other), sig(other, ops[0]), sender=keeper)
    with reverts("oracle_hub: reports are identical"):
        hub.prove_observation_equivocation(P(a), sig(a, ops[0]), P(a), sig(a, ops[0]), sender=keeper)
    with reverts("oracle_hub: equivocation already proven"):
        c = {"round_id": 5, "price": 3 * 10**8, "observed_at": t}
        hub.prove_observation_equivocation(P(a), sig(a), P(c), sig(c), sender=keeper)


def test_set_report_contracts__once_admin_only(project, hub, deployment, token, registry, deployer, attacker, keeper):
    with ape.reverts("oracle_hub: report contracts already set"):
        hub.set_report_contracts(attacker, attacker, sender=deployer)
    fresh = deployer.deploy(project.OracleHub, token, registry, MIN_STAKE, 0, OP.equivocation_slash_bps)
    obs = (1, 1, 1)
    with ape.reverts("oracle_hub: report contracts not set"):
        fresh.prove_observation_equivocation(obs, b"", obs, b"", sender=keeper)
    with ape.reverts("oracle_hub: report contracts not set"):
        fresh.prove_rewards_equivocation(
            (0, b"\x00" * 32, 0, 0, 0), b"", (0, b"\x00" * 32, 0, 0, 0), b"", sender=keeper
        )
    with ape.reverts("access_control: account is missing role"):
        fresh.set_report_contracts(deployment.emissions, deployment.price_feed, sender=attacker)
    with ape.reverts("oracle_hub: report contract is the zero address"):
        fresh.set_report_contracts(ZERO, deployment.price_feed, sender=deployer)
    tx = fresh.set_report_contracts(deployment.emissions, deployment.price_feed, sender=deployer)
    assert _one(tx, fresh.ReportContractsSet) == {
        "emissions": deployment.emissions.address,
        "price_feed": deployment.price_feed.address,
    }
    assert (fresh.emissions(), fresh.price_feed()) == (deployment.emissions.address, deployment.price_feed.address)


def test_attack_second_uptime_report_with_a_later_nonce(reverts, hub, keeper, ops, machine, new_uptime, sign):
    """Finding 4: submit_uptime's docstring said one report per (epoch, machine), nonce 0, but a
    quorum could overwrite the epoch's uptime with nonce 1, 2, ... (availability rewards read
    it). Now the nonce must be 0 and a second report is refused."""
    first = new_uptime(machine, successes=2)
    hub.submit_uptime(U(first), sign(first, ops[:2], "uptime"), sender=keeper)
    later = new_uptime(machine, successes=9)
    assert later["nonce"] == 1  # uptime_nonce: 1 once reported
    with reverts("oracle_hub: uptime already reported"):
        hub.submit_uptime(U(later), sign(later, ops[:2], "uptime"), sender=keeper)
    assert hub.uptime_bps(7, machine) == 2 * MAX_BPS // 9
    # A fresh (epoch, machine) takes nonce 0 only.
    other = new_uptime(machine, epoch=8, nonce=1)
    with reverts("oracle_hub: wrong nonce"):
        hub.submit_uptime(U(other), sign(other, ops[:2], "uptime"), sender=keeper)


def test_prove_verdict_equivocation__invalid_pairs__revert(reverts, hub, keeper, ops, new_verdict, sig1):
    a = new_verdict()
    sa = sig1(a, ops[0], "verdict")
    cases = [
        (new_verdict(JOB + 1, valid=False), ops[0], "oracle_hub: different subjects"),
        (new_verdict(valid=False, nonce=1), ops[0], "oracle_hub: different nonces"),
        (a, ops[0], "oracle_hub: reports are identical"),
        (new_verdict(valid=False), ops[1], "oracle_hub: different signers"),
    ]
    for b, signer, message in cases:
        with reverts(message):
            hub.prove_verdict_equivocation(V(a), sa, V(b), sig1(b, signer, "verdict"), sender=keeper)
    # Identical reports are refused even with two distinct valid signatures of them.
    with reverts("oracle_hub: reports are identical"):
        hub.prove_verdict_equivocation(V(a), sa, V(a), sig1(a, ops[1], "verdict"), sender=keeper)
    assert all(hub.is_operator(op) and hub.operator_stake(op) == MIN_STAKE for op in ops)


def test_prove_verdict_equivocation__unstaked_stranger__reverts(reverts, hub, keeper, attacker, new_verdict, sig1):
    """A signer with no stake and no seat has nothing to slash."""
    a = new_verdict()
    b = new_verdict(valid=False)
    assert hub.operator_stake(attacker) == 0 and not hub.is_operator(attacker)
    with reverts("oracle_hub: signer is not an operator"):
        hub.prove_verdict_equivocation(
            V(a), sig1(a, attacker, "verdict"), V(b), sig1(b, attacker, "verdict"), sender=keeper
        )


def test_prove_verdict_equivocation__staked_non_operator__slashed_not_removed(
    hub, token, keeper, outsider, new_verdict, sig1
):
    """Pins current behaviour: the contract slashes any signer with stake, operator or not
    (`is_operator or stake + unbonding > 0`); no OperatorRemoved for a non-member."""
    a = new_verdict()
    b = new_verdict(valid=False)
    supply = token.totalSupply()
    tx = hub.prove_verdict_equivocation(
        V(a), sig1(a, outsider, "verdict"), V(b), sig1(b, outsider, "verdict"), sender=keeper
    )
    amount = MIN_STAKE * OP.equivocation_slash_bps // MAX_BPS
    assert _one(tx, hub.EquivocationProven)["operator"] == outsider.address
    assert not tx.decode_logs(hub.OperatorRemoved)
    assert hub.operator_stake(outsider) == MIN_STAKE - amount
    assert hub.operator_count() == 3
    assert token.totalSupply() == supply - amount  # burned in full


@pytest.mark.parametrize("kind", ["zeros", "v_29", "empty", "compact", "high_s"])
@pytest.mark.parametrize("which", ["a", "b"])
def test_prove_verdict_equivocation__bad_signature__reverts(reverts, hub, keeper, ops, new_verdict, sig1, kind, which):
    op = ops[0]
    a = new_verdict()
    b = new_verdict(valid=False)
    sigs = {"a": sig1(a, op, "verdict"), "b": sig1(b, op, "verdict")}
    good = sigs[which]
    r, s, v = split(good)
    bad, message = {
        "zeros": (b"\x00" * 65, "ecdsa: invalid signature"),
        "v_29": (good[:64] + bytes([29]), "ecdsa: invalid signature"),
        "empty": (b"", "oracle_hub: signature must be 65 bytes"),
        "compact": (
            r.to_bytes(32, "big") + (s | ((v - 27) << 255)).to_bytes(32, "big"),
            "oracle_hub: signature must be 65 bytes",
        ),
        "high_s": (
            r.to_bytes(32, "big") + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]),
            "ecdsa: invalid signature `s` value",
        ),
    }[kind]
    sigs[which] = bad
    with reverts(message):
        hub.prove_verdict_equivocation(V(a), sigs["a"], V(b), sigs["b"], sender=keeper)
    assert hub.is_operator(op) and hub.operator_stake(op) == MIN_STAKE


@pytest.mark.parametrize("domain", ["other_chain", "other_contract", "attestation_type"])
@pytest.mark.parametrize("both", [False, True])
def test_prove_verdict_equivocation__signed_for_another_domain__reverts(
    reverts, hub, chain, registry, keeper, ops, machine, new_report, new_verdict, sig1, domain, both
):
    """A signature over another domain (or another report type) recovers to an unrelated address,
    a different one per report: the pair never has one signer, and nobody is slashed."""
    op = ops[0]
    a = new_verdict()
    b = new_verdict(valid=False)

    def foreign(report):
        if domain == "attestation_type":
            return sig1(new_report(machine), op)
        other = {"chain_id": chain.chain_id + 1} if domain == "other_chain" else {"hub_address": registry.address}
        return sig1(report, op, "verdict", **other)

    sig_a = foreign(a) if both else sig1(a, op, "verdict")
    with reverts("oracle_hub: different signers"):
        hub.prove_verdict_equivocation(V(a), sig_a, V(b), foreign(b), sender=keeper)
    assert hub.is_operator(op) and hub.operator_stake(op) == MIN_STAKE


################################################################
#                        operator stake                        #
################################################################


def test_stake__adds_and_moves_tokens(hub, token, ops):
    op = ops[0]
    bal, hub_bal = token.balanceOf(op), token.balanceOf(hub)
    tx = hub.stake(5 * ONE_TOKEN, sender=op)
    assert _one(tx, hub.OperatorStaked) == {
        "operator": op.address,
        "amount": 5 * ONE_TOKEN,
        "stake": MIN_STAKE + 5 * ONE_TOKEN,
    }
    assert hub.operator_stake(op) == MIN_STAKE + 5 * ONE_TOKEN
    assert token.balanceOf(op) == bal - 5 * ONE_TOKEN
    assert token.balanceOf(hub) == hub_bal + 5 * ONE_TOKEN


def test_stake__zero_or_no_allowance__reverts(reverts, hub, token, deployer, ops, attacker):
    with reverts("oracle_hub: amount is zero"):
        hub.stake(0, sender=ops[0])
    with reverts("erc20: insufficient allowance"):
        hub.stake(1, sender=attacker)  # funded, never approved the hub


def test_request_unstake_withdraw__after_unbonding__pays_out(reverts, hub, token, chain, ops):
    op = ops[0]
    tx = hub.request_unstake(300 * ONE_TOKEN, sender=op)
    release = tx.timestamp + UNBONDING
    assert _one(tx, hub.OperatorUnstakeRequested) == {
        "operator": op.address,
        "amount": 300 * ONE_TOKEN,
        "release_time": release,
    }
    assert (hub.operator_stake(op), hub.operator_unbonding(op)) == (MIN_STAKE - 300 * ONE_TOKEN, 300 * ONE_TOKEN)
    assert hub.operator_unbonding_release(op) == release
    chain.pending_timestamp = release - 1
    with reverts("oracle_hub: still unbonding"):
        hub.withdraw(sender=op)
    chain.pending_timestamp = release
    bal = token.balanceOf(op)
    tx = hub.withdraw(sender=op)
    assert tx.timestamp == release
    assert _one(tx, hub.OperatorWithdrawn) == {"operator": op.address, "amount": 300 * ONE_TOKEN}
    assert token.balanceOf(op) == bal + 300 * ONE_TOKEN
    assert (hub.operator_unbonding(op), hub.operator_unbonding_release(op)) == (0, 0)
    with reverts("oracle_hub: nothing unbonding"):
        hub.withdraw(sender=op)


def test_request_unstake__second_request__adds_and_restarts_clock(reverts, hub, chain, ops):
    op = ops[1]
    first = hub.request_unstake(100, sender=op).timestamp + UNBONDING
    chain.pending_timestamp += 5_000
    second = hub.request_unstake(50, sender=op).timestamp + UNBONDING
    assert second >= first + 5_000
    assert hub.operator_unbonding(op) == 150
    chain.pending_timestamp = first
    with reverts("oracle_hub: still unbonding"):
        hub.withdraw(sender=op)
    chain.pending_timestamp = second
    assert _one(hub.withdraw(sender=op), hub.OperatorWithdrawn)["amount"] == 150


def test_request_unstake__invalid__reverts(reverts, hub, ops, attacker):
    with reverts("oracle_hub: amount is zero"):
        hub.request_unstake(0, sender=ops[0])
    with reverts("oracle_hub: not enough stake"):
        hub.request_unstake(MIN_STAKE + 1, sender=ops[0])
    with reverts("oracle_hub: not enough stake"):
        hub.request_unstake(1, sender=attacker)


def test_withdraw__never_unstaked__reverts(reverts, hub, ops):
    with reverts("oracle_hub: nothing unbonding"):
        hub.withdraw(sender=ops[0])


################################################################
#                       governance (admin)                     #
################################################################


def test_add_remove_operator__admin__updates_set(hub, deployer, ops, pool):
    tx = hub.add_operator(pool[4], sender=deployer)
    assert _one(tx, hub.OperatorAdded) == {"operator": pool[4].address}
    assert hub.is_operator(pool[4]) and hub.operator_count() == 4
    tx = hub.remove_operator(ops[0], sender=deployer)
    assert _one(tx, hub.OperatorRemoved) == {"operator": ops[0].address}
    assert not hub.is_operator(ops[0]) and hub.operator_count() == 3
    assert hub.operator_stake(ops[0]) == MIN_STAKE  # removal is not a slash


def test_add_operator__invalid__reverts(reverts, hub, deployer, ops):
    with reverts("oracle_hub: operator is the zero address"):
        hub.add_operator(ZERO, sender=deployer)
    with reverts("oracle_hub: already an operator"):
        hub.add_operator(ops[1], sender=deployer)


def test_remove_operator__not_an_operator__reverts(reverts, hub, deployer, outsider):
    with reverts("oracle_hub: not an operator"):
        hub.remove_operator(outsider, sender=deployer)


def test_add_operator__too_many__reverts(reverts, hub, deployer):
    for i in range(1, 32 - 3 + 1):
        hub.add_operator("0x" + f"{i:040x}", sender=deployer)
    assert hub.operator_count() == 32
    with reverts("oracle_hub: too many operators"):
        hub.add_operator("0x" + "ee" * 20, sender=deployer)


def test_set_threshold__admin__sets(reverts, hub, deployer):
    tx = hub.set_threshold(32, sender=deployer)
    assert _one(tx, hub.ThresholdSet) == {"threshold": 32}
    assert hub.threshold() == 32
    with reverts("oracle_hub: threshold is zero"):
        hub.set_threshold(0, sender=deployer)
    with reverts("oracle_hub: threshold too high"):
        hub.set_threshold(33, sender=deployer)


def test_set_params__admin__sets_and_bounds(reverts, hub, deployer):
    tx = hub.set_params(7, MAX_BPS, 0, sender=deployer)
    assert _one(tx, hub.OracleParamsSet) == {
        "min_operator_stake": 7,
        "hardware_slash_bps": MAX_BPS,
        "equivocation_slash_bps": 0,
    }
    assert (hub.min_operator_stake(), hub.hardware_slash_bps(), hub.equivocation_slash_bps()) == (7, MAX_BPS, 0)
    with reverts("oracle_hub: hardware slash too high"):
        hub.set_params(7, MAX_BPS + 1, 0, sender=deployer)
    with reverts("oracle_hub: equivocation slash too high"):
        hub.set_params(7, 0, MAX_BPS + 1, sender=deployer)


@pytest.mark.parametrize("who", ["attacker", "operator"])
def test_governance__not_admin__reverts(reverts, hub, ops, pool, attacker, who):
    caller = attacker if who == "attacker" else ops[0]
    calls = [
        lambda: hub.add_operator(pool[5], sender=caller),
        lambda: hub.remove_operator(ops[1], sender=caller),
        lambda: hub.set_threshold(3, sender=caller),
        lambda: hub.set_params(0, 0, 0, sender=caller),
        lambda: hub.grantRole(DEFAULT_ADMIN_ROLE, caller, sender=caller),
    ]
    for call in calls:
        with reverts("access_control: account is missing role"):
            call()


@pytest.mark.parametrize(
    "which,message",
    [
        ("token", "oracle_hub: token is the zero address"),
        ("registry", "oracle_hub: registry is the zero address"),
        ("hardware", "oracle_hub: hardware slash too high"),
        ("equivocation", "oracle_hub: equivocation slash too high"),
    ],
)
def test_constructor__invalid__reverts(project, deployer, token, registry, which, message):
    args = [token.address, registry.address, MIN_STAKE, OP.hardware_slash_bps, OP.equivocation_slash_bps]
    args[{"token": 0, "registry": 1, "hardware": 3, "equivocation": 4}[which]] = (
        ZERO if which in ("token", "registry") else MAX_BPS + 1
    )
    with ape.reverts(message):
        deployer.deploy(project.OracleHub, *args)


def test_constructor__defaults__threshold_one_no_operators(project, deployer, token, registry):
    h = deployer.deploy(project.OracleHub, token.address, registry.address, 1, 2, 3)
    assert (h.threshold(), h.operator_count()) == (1, 0)
    assert (h.min_operator_stake(), h.hardware_slash_bps(), h.equivocation_slash_bps()) == (1, 2, 3)
    assert h.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert not registry.hasRole(role("ATTESTER_ROLE"), h)


@pytest.fixture
def fresh_hub(project, deployer, token, registry):
    """A new OracleHub (no job market), ops[0..2] operators at threshold 2, no minimum stake."""

    def _fresh(ops):
        h = deployer.deploy(project.OracleHub, token.address, registry.address, 0, 0, OP.equivocation_slash_bps)
        for a in ops:
            h.add_operator(a, sender=deployer)
        h.set_threshold(2, sender=deployer)
        return h

    return _fresh


def test_submit_verdict__job_market_not_set__reverts(chain, fresh_hub, market, deployer, keeper, ops, token, registry):
    """A hub whose job market is unset refuses every verdict before anything else (even a
    well-signed one at a wrong nonce); once set, the next check is reached."""
    h = fresh_hub(ops)
    assert h.job_market() == ZERO
    report = {"job_id": JOB, "result_hash": b"\x00" * 32, "valid": True, "evidence_hash": b"\x5e" * 32}
    for nonce in (0, 1):
        r = {**report, "nonce": nonce}
        td = R.verdict_typed_data(h.address, chain.chain_id, r)
        sigs = R.sort_signatures([(a.address, R.sign_report(a.private_key, td)) for a in ops[:2]])
        before = storage_roots(chain, (h, market, registry, token))
        with ape.reverts("oracle_hub: job market not set"):
            h.submit_verdict(V(r), ZERO_JOB, sigs, sender=keeper)
        assert storage_roots(chain, (h, market, registry, token)) == before
    h.set_job_market(market, sender=deployer)
    with ape.reverts("oracle_hub: wrong nonce"):
        h.submit_verdict(V(r), ZERO_JOB, sigs, sender=keeper)


def test_set_job_market__zero_address__reverts(chain, reverts, hub, fresh_hub, market, deployer, ops):
    h = fresh_hub(ops)
    before = storage_roots(chain, (h,))
    with ape.reverts("oracle_hub: job market is the zero address"):
        h.set_job_market(ZERO, sender=deployer)
    assert storage_roots(chain, (h,)) == before
    assert h.job_market() == ZERO
    # The zero check comes first: the deployed hub (market already set) gives the same answer.
    with reverts("oracle_hub: job market is the zero address"):
        hub.set_job_market(ZERO, sender=deployer)
    assert hub.job_market() == market.address
    # A real address is then accepted once.
    tx = h.set_job_market(market, sender=deployer)
    assert _one(tx, h.JobMarketSet) == {"job_market": market.address}
    assert h.job_market() == market.address


################################################################
#                               gas                            #
################################################################


def test_gas__submit_attestation__by_signatures(hub, deployer, keeper, pool, make_provider, provider, new_report, sign):
    """Gas of one PASS report with M signatures (threshold M of 2M-1 operators): the first
    attestation of a machine (nonce and hash slots written from zero) and a renewal."""
    added = 3
    measured = {}
    for m in (2, 3, 5):
        n = 2 * m - 1
        for a in pool[added:n]:
            hub.add_operator(a, sender=deployer)
        added = max(added, n)
        hub.set_threshold(m, sender=deployer)
        mid = make_provider(provider, stake=0, activate=False, price=0)
        first = new_report(mid)
        gas_first = hub.submit_attestation(A(first), sign(first, pool[:m]), sender=keeper).gas_used
        renewal = new_report(mid)
        gas_renewal = hub.submit_attestation(A(renewal), sign(renewal, pool[:m]), sender=keeper).gas_used
        measured[m] = (gas_first, gas_renewal)
    print("\nsubmit_attestation gas {M: (first, renewal)}:", measured)
    for m, (gas_first, gas_renewal) in measured.items():
        assert gas_first <= GAS_CEILING[m][0], (m, gas_first)
        assert gas_renewal <= GAS_CEILING[m][1], (m, gas_renewal)
    # Each extra signature costs roughly one ecrecover plus two cold reads.
    per_sig = (measured[5][1] - measured[3][1]) / 2
    assert 5_000 < per_sig < 12_000, per_sig
