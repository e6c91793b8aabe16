# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Oracle quorum: M-of-N signed reports
@custom:contract-name OracleHub
@license AGPL-3.0-only
@notice Registered, staked oracle operators sign EIP-712 reports off-chain; anyone submits
        a report with at least `threshold` distinct operator signatures and it takes effect:
        - BenchmarkAttestation (machine, provider, class, outcome, measured figures,
          transcript hash, validity): PASS -> machine Active until `valid_until`;
          FAIL_MISREPORT (wrong results, too slow for the claimed class, claim above the
          measured class) -> machine Jailed and the provider slashed `hardware_slash_bps`
          of its stake (burned); FAIL_UNREACHABLE (no answer) -> Jailed, no slash.
        - UptimeReport (epoch, machine, probes, successes): recorded for reputation and
          availability rewards.
        - JobVerdict (job, result hash, valid, evidence hash): the quorum's verdict on a job
          in Audit (sampled or disputed), forwarded to JobMarket.post_verdict.
        Each report names a subject and carries that subject's current nonce, which then
        increments: no report can be replayed. Attestation: per machine, nonces 0, 1, 2, ...
        (one per renewal). Verdict: per job, nonce 0 only: a verdict ends the job.
        Uptime: per (epoch, machine), nonce 0 only: one report, ever.
        Two differing reports signed by one operator for the same subject and nonce are proof
        of equivocation, for every kind of report the operators sign: attestations, uptime,
        verdicts here, and Emissions' EpochRewards (same epoch and nonce) and PriceFeed's
        PriceObservation (same round), whose digests come from those contracts (set once,
        `set_report_contracts`). Anyone submits both: the operator loses
        `equivocation_slash_bps` of its stake, burned in full (no bounty: the equivocator
        submitting its own proof would get part of it back), and is removed from the operator
        set. One offence (signer, subject, nonce), one slash.
@custom:security Domain: name "gpunet OracleHub", version "1", chain id and this contract
        (snekmate eip712_domain_separator recomputes it if the chain id changes, so a fork
        cannot replay). Signatures: 65 bytes, low-s (snekmate ecdsa), signers strictly
        increasing (no duplicates), each a registered operator with at least
        `min_operator_stake` bonded. A quorum needs 2 * threshold > operator count, so two
        disjoint quorums cannot both exist; a misconfigured set refuses every report.
        Roles: DEFAULT_ADMIN_ROLE (governance timelock) adds/removes operators and sets the
        threshold and slash shares. Needs ATTESTER_ROLE and SLASHER_ROLE on ProviderRegistry.
"""

from ethereum.ercs import IERC20
from interfaces import IComputeToken
from interfaces import IAttestedRegistry
from interfaces import IJobMarket
from interfaces import IReportDigests

from snekmate.auth import access_control
# Governance manages the operator set and parameters.
initializes: access_control

from snekmate.utils import eip712_domain_separator
# EIP-712 domain bound to chain id and this contract.
initializes: eip712_domain_separator

from snekmate.utils import ecdsa
# Signature recovery with the low-s malleability check; stateless.

exports: (
    access_control.supportsInterface,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.set_role_admin,
    access_control.DEFAULT_ADMIN_ROLE,
    eip712_domain_separator.eip712Domain,
)

################################################################
#                          CONSTANTS                           #
################################################################

# Upper bound on the operator set (and so on signatures per report).
MAX_OPERATORS: public(constant(uint256)) = 32
# Largest batch of `submit_verdicts`.
MAX_VERDICT_BATCH: public(constant(uint256)) = 20

MAX_BPS: public(constant(uint256)) = 10_000

# Attestation outcomes (mirrored in offchain/constants.py).
OUTCOME_PASS: public(constant(uint8)) = 0
OUTCOME_FAIL_MISREPORT: public(constant(uint8)) = 1
OUTCOME_FAIL_UNREACHABLE: public(constant(uint8)) = 2

# An attestation is valid for at most this long; the service renews before expiry.
MAX_ATTESTATION_SECONDS: public(constant(uint256)) = 30 * 86400

# Seconds between an operator's unstake request and its withdrawal (slashable meanwhile).
OPERATOR_UNBONDING_SECONDS: public(constant(uint256)) = 14 * 86400

ATTESTATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "BenchmarkAttestation(uint256 machine_id,address provider,uint16 class_id,uint8 outcome,uint256 fp32_gflops,uint256 bf16_gflops,uint256 bandwidth_gbs,bytes32 transcript_hash,uint256 measured_at,uint256 valid_until,uint256 nonce)"
)
UPTIME_TYPEHASH: public(constant(bytes32)) = keccak256(
    "UptimeReport(uint256 epoch,uint256 machine_id,uint256 probes,uint256 successes,uint256 nonce)"
)
VERDICT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "JobVerdict(uint256 job_id,bytes32 result_hash,bool valid,bytes32 evidence_hash,uint256 nonce)"
)

# Typehashes of the reports signed under Emissions' and PriceFeed's domains (their subjects here).
_REWARDS_TYPEHASH: constant(bytes32) = keccak256(
    "EpochRewards(uint256 epoch,bytes32 root,uint256 total_work,uint256 total_availability,uint256 nonce)"
)
_OBSERVATION_TYPEHASH: constant(bytes32) = keccak256(
    "PriceObservation(uint256 round_id,uint256 price,uint256 observed_at)"
)

_REASON_HARDWARE: constant(bytes32) = keccak256("HARDWARE_MISREPORT")

################################################################
#                           STRUCTS                            #
################################################################

struct BenchmarkAttestation:
    machine_id: uint256
    provider: address
    class_id: uint16
    outcome: uint8
    # Measured figures, integers: GFLOPS and GB/s.
    fp32_gflops: uint256
    bf16_gflops: uint256
    bandwidth_gbs: uint256
    # sha256 of the challenge transcript the operators checked (kept off-chain).
    transcript_hash: bytes32
    measured_at: uint256
    valid_until: uint256
    nonce: uint256

struct UptimeReport:
    epoch: uint256
    machine_id: uint256
    probes: uint256
    successes: uint256
    nonce: uint256

struct JobVerdict:
    job_id: uint256
    # The result the verdict is about: a verdict cannot be applied to another submission.
    result_hash: bytes32
    valid: bool
    # sha256 of the audit transcript (executions, comparisons) the operators kept off-chain.
    evidence_hash: bytes32
    nonce: uint256

################################################################
#                            STATE                             #
################################################################

TOKEN: public(immutable(address))
REGISTRY: public(immutable(address))

# Operator set membership and size.
is_operator: public(HashMap[address, bool])
operator_count: public(uint256)

# Signatures needed for a report to take effect.
threshold: public(uint256)

# Operator stake: bonded (counts for signing and is slashable) and unbonding (slashable).
operator_stake: public(HashMap[address, uint256])
operator_unbonding: public(HashMap[address, uint256])
operator_unbonding_release: public(HashMap[address, uint256])

# Bonded stake an operator needs for its signature to count.
min_operator_stake: public(uint256)

# Share of a provider's slashable stake burned for a hardware misreport.
hardware_slash_bps: public(uint256)

# Share of an equivocating operator's stake slashed (all of it burned).
equivocation_slash_bps: public(uint256)

# Next nonce per report subject.
nonces: public(HashMap[bytes32, uint256])

# The JobMarket whose audits this quorum decides (set once by governance; needs VERIFIER_ROLE there).
job_market: public(address)

# Emissions and PriceFeed, whose EpochRewards and PriceObservation digests equivocation proofs
# ask for (set once by governance).
emissions: public(address)
price_feed: public(address)

# Last accepted attestation per machine (its EIP-712 struct hash) and when it expires.
attestation_hash: public(HashMap[uint256, bytes32])

# Uptime per epoch and machine, in basis points of successful probes.
uptime_bps: public(HashMap[uint256, HashMap[uint256, uint256]])

# Equivocations already punished, by keccak256(signer, subject, nonce): one offence, one slash.
_equivocation_punished: HashMap[bytes32, bool]

################################################################
#                            EVENTS                            #
################################################################

event OperatorAdded:
    operator: indexed(address)

event OperatorRemoved:
    operator: indexed(address)

event ThresholdSet:
    threshold: uint256

event OracleParamsSet:
    min_operator_stake: uint256
    hardware_slash_bps: uint256
    equivocation_slash_bps: uint256

event OperatorStaked:
    operator: indexed(address)
    amount: uint256
    stake: uint256

event OperatorUnstakeRequested:
    operator: indexed(address)
    amount: uint256
    release_time: uint256

event OperatorWithdrawn:
    operator: indexed(address)
    amount: uint256

event AttestationAccepted:
    machine_id: indexed(uint256)
    provider: indexed(address)
    outcome: uint8
    class_id: uint16
    fp32_gflops: uint256
    bf16_gflops: uint256
    bandwidth_gbs: uint256
    transcript_hash: bytes32
    valid_until: uint256
    nonce: uint256
    slashed: uint256
    signers: uint256

event UptimeRecorded:
    epoch: indexed(uint256)
    machine_id: indexed(uint256)
    probes: uint256
    successes: uint256
    uptime_bps: uint256

event VerdictAccepted:
    job_id: indexed(uint256)
    valid: bool
    result_hash: bytes32
    evidence_hash: bytes32
    signers: uint256

event JobMarketSet:
    job_market: indexed(address)

event ReportContractsSet:
    emissions: indexed(address)
    price_feed: indexed(address)

event EquivocationProven:
    operator: indexed(address)
    reporter: indexed(address)
    subject: bytes32
    nonce: uint256
    slashed: uint256


@deploy
def __init__(
    token: address,
    registry: address,
    min_operator_stake_: uint256,
    hardware_slash_bps_: uint256,
    equivocation_slash_bps_: uint256,
):
    assert token != empty(address), "oracle_hub: token is the zero address"
    assert registry != empty(address), "oracle_hub: registry is the zero address"
    access_control.__init__()
    eip712_domain_separator.__init__("gpunet OracleHub", "1")
    TOKEN = token
    REGISTRY = registry
    self.threshold = 1
    self._set_params(min_operator_stake_, hardware_slash_bps_, equivocation_slash_bps_)


################################################################
#                   REPORTS (permissionless)                   #
################################################################

@external
def submit_attestation(report: BenchmarkAttestation, signatures: DynArray[Bytes[65], MAX_OPERATORS]):
    """
    @notice Applies a benchmark attestation signed by a quorum of operators; `report.nonce` is
            the machine's current attestation nonce (0, then one more per attestation).
    """
    subject: bytes32 = self._attestation_subject(report.machine_id)
    assert report.nonce == self.nonces[subject], "oracle_hub: wrong nonce"
    assert report.outcome <= OUTCOME_FAIL_UNREACHABLE, "oracle_hub: invalid outcome"
    assert report.measured_at <= block.timestamp, "oracle_hub: measured in the future"
    assert staticcall IAttestedRegistry(REGISTRY).machine_provider(report.machine_id) == report.provider, \
        "oracle_hub: provider mismatch"
    struct_hash: bytes32 = self._attestation_struct_hash(report)
    signers: uint256 = self._check_quorum(eip712_domain_separator._hash_typed_data_v4(struct_hash), signatures)
    self.nonces[subject] = report.nonce + 1
    self.attestation_hash[report.machine_id] = struct_hash

    slashed: uint256 = 0
    if report.outcome == OUTCOME_PASS:
        assert report.valid_until > block.timestamp, "oracle_hub: attestation already expired"
        assert report.valid_until <= block.timestamp + MAX_ATTESTATION_SECONDS, "oracle_hub: validity too long"
        extcall IAttestedRegistry(REGISTRY).record_attestation(report.machine_id, report.class_id, True, report.valid_until)
    else:
        extcall IAttestedRegistry(REGISTRY).record_attestation(report.machine_id, report.class_id, False, 0)
        if report.outcome == OUTCOME_FAIL_MISREPORT:
            amount: uint256 = staticcall IAttestedRegistry(REGISTRY).slashable(report.provider) * self.hardware_slash_bps // MAX_BPS
            if amount > 0:
                slashed = extcall IAttestedRegistry(REGISTRY).slash(report.provider, amount, _REASON_HARDWARE, empty(address))
    log AttestationAccepted(
        machine_id=report.machine_id,
        provider=report.provider,
        outcome=report.outcome,
        class_id=report.class_id,
        fp32_gflops=report.fp32_gflops,
        bf16_gflops=report.bf16_gflops,
        bandwidth_gbs=report.bandwidth_gbs,
        transcript_hash=report.transcript_hash,
        valid_until=report.valid_until,
        nonce=report.nonce,
        slashed=slashed,
        signers=signers,
    )


@external
def submit_uptime(report: UptimeReport, signatures: DynArray[Bytes[65], MAX_OPERATORS]):
    """
    @notice Records one machine's uptime for one epoch, once: the nonce must be 0 and no report
            for (epoch, machine) accepted before.
    """
    subject: bytes32 = self._uptime_subject(report.epoch, report.machine_id)
    assert self.nonces[subject] == 0, "oracle_hub: uptime already reported"
    assert report.nonce == 0, "oracle_hub: wrong nonce"
    assert report.probes > 0, "oracle_hub: no probes"
    assert report.successes <= report.probes, "oracle_hub: more successes than probes"
    assert staticcall IAttestedRegistry(REGISTRY).machine_provider(report.machine_id) != empty(address), \
        "oracle_hub: unknown machine"
    self._check_quorum(eip712_domain_separator._hash_typed_data_v4(self._uptime_struct_hash(report)), signatures)
    self.nonces[subject] = report.nonce + 1
    bps: uint256 = report.successes * MAX_BPS // report.probes
    self.uptime_bps[report.epoch][report.machine_id] = bps
    log UptimeRecorded(
        epoch=report.epoch, machine_id=report.machine_id, probes=report.probes, successes=report.successes, uptime_bps=bps
    )


@external
def submit_verdict(report: JobVerdict, job: IJobMarket.Job, signatures: DynArray[Bytes[65], MAX_OPERATORS]):
    """
    @notice Applies the quorum's verdict on a job in audit (drawn, or disputed): JobMarket
            checks `job` against its commitment and that the job is in audit before its
            deadline. `report.nonce` is the job's current verdict nonce: 0, since a verdict
            ends the job (Finalized or Failed).
    """
    self._submit_verdict(report, job, signatures)


@external
def submit_verdicts(
    reports: DynArray[JobVerdict, MAX_VERDICT_BATCH],
    jobs: DynArray[IJobMarket.Job, MAX_VERDICT_BATCH],
    signatures: DynArray[DynArray[Bytes[65], MAX_OPERATORS], MAX_VERDICT_BATCH],
):
    """
    @notice Batch form of `submit_verdict`, all or nothing: one report that would revert alone
            reverts the batch (the caller then submits them one by one).
    """
    assert len(reports) > 0, "oracle_hub: empty batch"
    assert len(reports) == len(jobs) and len(reports) == len(signatures), "oracle_hub: length mismatch"
    for i: uint256 in range(len(reports), bound=MAX_VERDICT_BATCH):
        self._submit_verdict(reports[i], jobs[i], signatures[i])


@internal
def _submit_verdict(report: JobVerdict, job: IJobMarket.Job, signatures: DynArray[Bytes[65], MAX_OPERATORS]):
    market: address = self.job_market
    assert market != empty(address), "oracle_hub: job market not set"
    subject: bytes32 = self._verdict_subject(report.job_id)
    assert report.nonce == self.nonces[subject], "oracle_hub: wrong nonce"
    assert report.result_hash == job.result_hash, "oracle_hub: verdict is for another result"
    signers: uint256 = self._check_quorum(
        eip712_domain_separator._hash_typed_data_v4(self._verdict_struct_hash(report)), signatures
    )
    self.nonces[subject] = report.nonce + 1
    extcall IJobMarket(market).post_verdict(report.job_id, job, report.valid)
    log VerdictAccepted(
        job_id=report.job_id,
        valid=report.valid,
        result_hash=report.result_hash,
        evidence_hash=report.evidence_hash,
        signers=signers,
    )


@external
def prove_verdict_equivocation(a: JobVerdict, sig_a: Bytes[65], b: JobVerdict, sig_b: Bytes[65]) -> uint256:
    """
    @notice Two differing verdicts for the same job and nonce, signed by one operator.
    @return The amount slashed.
    """
    self._check_pair(a.job_id == b.job_id, a.nonce, b.nonce)
    da: bytes32 = eip712_domain_separator._hash_typed_data_v4(self._verdict_struct_hash(a))
    db: bytes32 = eip712_domain_separator._hash_typed_data_v4(self._verdict_struct_hash(b))
    return self._equivocation(self._verdict_subject(a.job_id), a.nonce, da, sig_a, db, sig_b)


@external
def prove_attestation_equivocation(
    a: BenchmarkAttestation, sig_a: Bytes[65], b: BenchmarkAttestation, sig_b: Bytes[65]
) -> uint256:
    """
    @notice Two differing attestations for the same machine and nonce, signed by one operator.
    @return The amount slashed.
    """
    self._check_pair(a.machine_id == b.machine_id, a.nonce, b.nonce)
    da: bytes32 = eip712_domain_separator._hash_typed_data_v4(self._attestation_struct_hash(a))
    db: bytes32 = eip712_domain_separator._hash_typed_data_v4(self._attestation_struct_hash(b))
    return self._equivocation(self._attestation_subject(a.machine_id), a.nonce, da, sig_a, db, sig_b)


@external
def prove_uptime_equivocation(a: UptimeReport, sig_a: Bytes[65], b: UptimeReport, sig_b: Bytes[65]) -> uint256:
    """
    @notice Two differing uptime reports for the same epoch, machine and nonce, signed by one operator.
    @return The amount slashed.
    """
    self._check_pair(a.epoch == b.epoch and a.machine_id == b.machine_id, a.nonce, b.nonce)
    da: bytes32 = eip712_domain_separator._hash_typed_data_v4(self._uptime_struct_hash(a))
    db: bytes32 = eip712_domain_separator._hash_typed_data_v4(self._uptime_struct_hash(b))
    return self._equivocation(self._uptime_subject(a.epoch, a.machine_id), a.nonce, da, sig_a, db, sig_b)


@external
def prove_rewards_equivocation(
    a: IReportDigests.EpochRewards, sig_a: Bytes[65], b: IReportDigests.EpochRewards, sig_b: Bytes[65]
) -> uint256:
    """
    @notice Two differing Emissions EpochRewards reports for the same epoch and nonce, signed by
            one operator (under Emissions' EIP-712 domain).
    @return The amount slashed.
    """
    em: address = self._report_contract(self.emissions)
    self._check_pair(a.epoch == b.epoch, a.nonce, b.nonce)
    da: bytes32 = staticcall IReportDigests(em).rewards_digest(a)
    db: bytes32 = staticcall IReportDigests(em).rewards_digest(b)
    return self._equivocation(keccak256(abi_encode(_REWARDS_TYPEHASH, a.epoch)), a.nonce, da, sig_a, db, sig_b)


@external
def prove_observation_equivocation(
    a: IReportDigests.PriceObservation, sig_a: Bytes[65], b: IReportDigests.PriceObservation, sig_b: Bytes[65]
) -> uint256:
    """
    @notice Two differing PriceFeed observations for the same round id, signed by one operator
            (under PriceFeed's EIP-712 domain): an operator signs one observation per round.
    @return The amount slashed.
    """
    feed: address = self._report_contract(self.price_feed)
    # The round id is the observation's nonce.
    self._check_pair(a.round_id == b.round_id, a.round_id, b.round_id)
    da: bytes32 = staticcall IReportDigests(feed).observation_digest(a)
    db: bytes32 = staticcall IReportDigests(feed).observation_digest(b)
    return self._equivocation(
        keccak256(abi_encode(_OBSERVATION_TYPEHASH, a.round_id)), a.round_id, da, sig_a, db, sig_b
    )


################################################################
#                      OPERATOR STAKE                          #
################################################################

@external
def stake(amount: uint256):
    """
    @notice Bonds tokens behind the caller's signatures (anyone may stake; only operators count).
    """
    assert amount > 0, "oracle_hub: amount is zero"
    self.operator_stake[msg.sender] += amount
    assert extcall IERC20(TOKEN).transferFrom(msg.sender, self, amount, default_return_value=True), \
        "oracle_hub: transfer failed"
    log OperatorStaked(operator=msg.sender, amount=amount, stake=self.operator_stake[msg.sender])


@external
def request_unstake(amount: uint256):
    """
    @notice Starts unbonding `amount` (slashable for OPERATOR_UNBONDING_SECONDS; restarts the clock).
    """
    assert amount > 0, "oracle_hub: amount is zero"
    assert amount <= self.operator_stake[msg.sender], "oracle_hub: not enough stake"
    self.operator_stake[msg.sender] -= amount
    self.operator_unbonding[msg.sender] += amount
    release: uint256 = block.timestamp + OPERATOR_UNBONDING_SECONDS
    self.operator_unbonding_release[msg.sender] = release
    log OperatorUnstakeRequested(operator=msg.sender, amount=amount, release_time=release)


@external
def withdraw() -> uint256:
    amount: uint256 = self.operator_unbonding[msg.sender]
    assert amount > 0, "oracle_hub: nothing unbonding"
    assert block.timestamp >= self.operator_unbonding_release[msg.sender], "oracle_hub: still unbonding"
    self.operator_unbonding[msg.sender] = 0
    self.operator_unbonding_release[msg.sender] = 0
    assert extcall IERC20(TOKEN).transfer(msg.sender, amount, default_return_value=True), "oracle_hub: transfer failed"
    log OperatorWithdrawn(operator=msg.sender, amount=amount)
    return amount


################################################################
#                            VIEWS                             #
################################################################

@external
@view
def attestation_digest(report: BenchmarkAttestation) -> bytes32:
    """
    @notice The EIP-712 digest operators sign for `report`.
    """
    return eip712_domain_separator._hash_typed_data_v4(self._attestation_struct_hash(report))


@external
@view
def uptime_digest(report: UptimeReport) -> bytes32:
    return eip712_domain_separator._hash_typed_data_v4(self._uptime_struct_hash(report))


@external
@view
def attestation_nonce(machine_id: uint256) -> uint256:
    return self.nonces[self._attestation_subject(machine_id)]


@external
@view
def uptime_nonce(epoch: uint256, machine_id: uint256) -> uint256:
    return self.nonces[self._uptime_subject(epoch, machine_id)]


@external
@view
def verdict_digest(report: JobVerdict) -> bytes32:
    return eip712_domain_separator._hash_typed_data_v4(self._verdict_struct_hash(report))


@external
@view
def verdict_nonce(job_id: uint256) -> uint256:
    return self.nonces[self._verdict_subject(job_id)]


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    return eip712_domain_separator._domain_separator_v4()


################################################################
#                        ROLE-GATED                            #
################################################################

@external
def add_operator(operator: address):
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert operator != empty(address), "oracle_hub: operator is the zero address"
    assert not self.is_operator[operator], "oracle_hub: already an operator"
    assert self.operator_count < MAX_OPERATORS, "oracle_hub: too many operators"
    self.is_operator[operator] = True
    self.operator_count += 1
    log OperatorAdded(operator=operator)


@external
def remove_operator(operator: address):
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert self.is_operator[operator], "oracle_hub: not an operator"
    self._remove_operator(operator)


@external
def set_job_market(market: address):
    """
    @notice Once: the JobMarket this quorum posts verdicts to.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert market != empty(address), "oracle_hub: job market is the zero address"
    assert self.job_market == empty(address), "oracle_hub: job market already set"
    self.job_market = market
    log JobMarketSet(job_market=market)


@external
def set_report_contracts(emissions_: address, price_feed_: address):
    """
    @notice Once: the Emissions and PriceFeed whose reports' equivocation this hub slashes.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert emissions_ != empty(address) and price_feed_ != empty(address), \
        "oracle_hub: report contract is the zero address"
    assert self.emissions == empty(address), "oracle_hub: report contracts already set"
    self.emissions = emissions_
    self.price_feed = price_feed_
    log ReportContractsSet(emissions=emissions_, price_feed=price_feed_)


@external
def set_threshold(threshold_: uint256):
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert threshold_ > 0, "oracle_hub: threshold is zero"
    assert threshold_ <= MAX_OPERATORS, "oracle_hub: threshold too high"
    self.threshold = threshold_
    log ThresholdSet(threshold=threshold_)


@external
def set_params(min_operator_stake_: uint256, hardware_slash_bps_: uint256, equivocation_slash_bps_: uint256):
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._set_params(min_operator_stake_, hardware_slash_bps_, equivocation_slash_bps_)


################################################################
#                          INTERNAL                            #
################################################################

@internal
@pure
def _check_pair(same_subject: bool, nonce_a: uint256, nonce_b: uint256):
    # The two reports of an equivocation proof: one subject, one nonce (one place, one revert
    # site each: five proofs share it).
    assert same_subject, "oracle_hub: different subjects"
    assert nonce_a == nonce_b, "oracle_hub: different nonces"


@internal
@pure
def _report_contract(addr: address) -> address:
    assert addr != empty(address), "oracle_hub: report contracts not set"
    return addr


@internal
@pure
def _attestation_subject(machine_id: uint256) -> bytes32:
    return keccak256(abi_encode(ATTESTATION_TYPEHASH, machine_id))


@internal
@pure
def _uptime_subject(epoch: uint256, machine_id: uint256) -> bytes32:
    return keccak256(abi_encode(UPTIME_TYPEHASH, epoch, machine_id))


@internal
@pure
def _verdict_subject(job_id: uint256) -> bytes32:
    return keccak256(abi_encode(VERDICT_TYPEHASH, job_id))


@internal
@pure
def _verdict_struct_hash(r: JobVerdict) -> bytes32:
    return keccak256(abi_encode(VERDICT_TYPEHASH, r.job_id, r.result_hash, r.valid, r.evidence_hash, r.nonce))


@internal
@pure
def _attestation_struct_hash(r: BenchmarkAttestation) -> bytes32:
    return keccak256(
        abi_encode(
            ATTESTATION_TYPEHASH,
            r.machine_id,
            r.provider,
            r.class_id,
            r.outcome,
            r.fp32_gflops,
            r.bf16_gflops,
            r.bandwidth_gbs,
            r.transcript_hash,
            r.measured_at,
            r.valid_until,
            r.nonce,
        )
    )


@internal
@pure
def _uptime_struct_hash(r: UptimeReport) -> bytes32:
    return keccak256(abi_encode(UPTIME_TYPEHASH, r.epoch, r.machine_id, r.probes, r.successes, r.nonce))


@internal
@view
def _recover(digest: bytes32, signature: Bytes[65]) -> address:
    # Only the 65-byte form: EIP-2098 compact signatures would give a second encoding.
    assert len(signature) == 65, "oracle_hub: signature must be 65 bytes"
    return ecdsa._recover_sig(digest, signature)


@internal
@view
def _check_quorum(digest: bytes32, signatures: DynArray[Bytes[65], MAX_OPERATORS]) -> uint256:
    m: uint256 = self.threshold
    n: uint256 = self.operator_count
    assert m * 2 > n, "oracle_hub: quorum misconfigured"
    assert len(signatures) >= m, "oracle_hub: not enough signatures"
    last: uint160 = 0
    min_stake: uint256 = self.min_operator_stake
    for sig: Bytes[65] in signatures:
        signer: address = self._recover(digest, sig)
        assert convert(signer, uint160) > last, "oracle_hub: signers not strictly increasing"
        assert self.is_operator[signer], "oracle_hub: signer is not an operator"
        assert self.operator_stake[signer] >= min_stake, "oracle_hub: signer stake too low"
        last = convert(signer, uint160)
    return len(signatures)


@internal
def _equivocation(
    subject: bytes32, nonce: uint256, da: bytes32, sig_a: Bytes[65], db: bytes32, sig_b: Bytes[65]
) -> uint256:
    # Livepeer's 2019 lesson: the two statements must really differ (same domain and type:
    # different digests are different reports).
    assert da != db, "oracle_hub: reports are identical"
    signer: address = self._recover(da, sig_a)
    assert signer == self._recover(db, sig_b), "oracle_hub: different signers"
    total: uint256 = self.operator_stake[signer] + self.operator_unbonding[signer]
    assert self.is_operator[signer] or total > 0, "oracle_hub: signer is not an operator"
    offence: bytes32 = keccak256(abi_encode(signer, subject, nonce))
    assert not self._equivocation_punished[offence], "oracle_hub: equivocation already proven"
    self._equivocation_punished[offence] = True
    amount: uint256 = total * self.equivocation_slash_bps // MAX_BPS
    from_stake: uint256 = min(amount, self.operator_stake[signer])
    self.operator_stake[signer] -= from_stake
    self.operator_unbonding[signer] -= amount - from_stake
    if self.is_operator[signer]:
        self._remove_operator(signer)
    # All of it burned: a bounty to the submitter would let the equivocator (or a second address
    # of it) prove its own offence and recover part of the slash.
    if amount > 0:
        extcall IComputeToken(TOKEN).burn(amount)
    log EquivocationProven(operator=signer, reporter=msg.sender, subject=subject, nonce=nonce, slashed=amount)
    return amount


@internal
def _remove_operator(operator: address):
    self.is_operator[operator] = False
    self.operator_count -= 1
    log OperatorRemoved(operator=operator)


@internal
def _set_params(min_operator_stake_: uint256, hardware_slash_bps_: uint256, equivocation_slash_bps_: uint256):
    assert hardware_slash_bps_ <= MAX_BPS, "oracle_hub: hardware slash too high"
    assert equivocation_slash_bps_ <= MAX_BPS, "oracle_hub: equivocation slash too high"
    self.min_operator_stake = min_operator_stake_
    self.hardware_slash_bps = hardware_slash_bps_
    self.equivocation_slash_bps = equivocation_slash_bps_
    log OracleParamsSet(
        min_operator_stake=min_operator_stake_,
        hardware_slash_bps=hardware_slash_bps_,
        equivocation_slash_bps=equivocation_slash_bps_,
    )
