# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title JobMarket's job storage: one commitment slot per job
@custom:contract-name job_store
@license AGPL-3.0-only
@notice Each job is stored as keccak256(abi_encode(Job)) with its status in the low byte.
        Callers pass the full `Job` struct (contracts/interfaces/IJobMarket.vyi; rebuilt
        from JobMarket's events, see offchain/chain/jobs.py) and `_load` checks it against
        the commitment.
"""

from interfaces import IJobMarket

# Job status values, stored in the low byte of the job slot (mirrored in offchain/constants.py).
STATUS_NONE: public(constant(uint8)) = 0
STATUS_OPEN: public(constant(uint8)) = 1
STATUS_RUNNING: public(constant(uint8)) = 2
STATUS_SUBMITTED: public(constant(uint8)) = 3
STATUS_AUDIT: public(constant(uint8)) = 4
STATUS_FINALIZED: public(constant(uint8)) = 5
STATUS_FAILED: public(constant(uint8)) = 6
STATUS_CANCELLED: public(constant(uint8)) = 7
STATUS_EXPIRED: public(constant(uint8)) = 8

# Largest batch in the *_many / *_jobs forms (a batch of 100 stays far below the block gas limit).
MAX_BATCH: public(constant(uint256)) = 100

# job id -> keccak256(abi_encode(Job)) with the low byte replaced by the status.
_jobs: HashMap[uint256, uint256]

# Number of jobs ever created (= the last id; ids start at 1).
job_count: public(uint256)


@external
@view
def job_status(job_id: uint256) -> uint8:
    return convert(self._jobs[job_id] & 255, uint8)


@external
@view
def job_commitment(job_id: uint256) -> bytes32:
    """
    @notice The stored commitment (status byte cleared); compare with `hash_job`.
    """
    return convert((self._jobs[job_id] >> 8) << 8, bytes32)


@external
@view
def check_job(job_id: uint256, job: IJobMarket.Job) -> bool:
    """
    @notice True when `job` is the current data of `job_id`.
    """
    stored: uint256 = self._jobs[job_id]
    return stored != 0 and (stored >> 8) == (self._commit(job, 0) >> 8)


@internal
def _next_id() -> uint256:
    job_id: uint256 = self.job_count + 1
    self.job_count = job_id
    return job_id


@internal
@pure
def _commit(job: IJobMarket.Job, status: uint8) -> uint256:
    # 248 bits of keccak256 keep 124-bit collision resistance; the low byte holds the status.
    return ((convert(keccak256(abi_encode(job)), uint256) >> 8) << 8) | convert(status, uint256)


@internal
@view
def _load(job_id: uint256, job: IJobMarket.Job) -> uint8:
    stored: uint256 = self._jobs[job_id]
    assert stored != 0, "job_market: unknown job"
    assert (stored >> 8) == (self._commit(job, 0) >> 8), "job_market: job data mismatch"
    return convert(stored & 255, uint8)


@internal
def _store(job_id: uint256, job: IJobMarket.Job, status: uint8):
    self._jobs[job_id] = self._commit(job, status)



@internal
@view
def _check_open(job_id: uint256, job: IJobMarket.Job):
    assert self._load(job_id, job) == STATUS_OPEN, "job_market: job not open"


@internal
@view
def _check_submitted(job_id: uint256, job: IJobMarket.Job):
    assert self._load(job_id, job) == STATUS_SUBMITTED, "job_market: job not submitted"


@internal
@view
def _check_user(job: IJobMarket.Job):
    assert msg.sender == job.user, "job_market: caller is not the user"


@internal
@pure
def _check_batch(n: uint256, m: uint256):
    assert n > 0, "job_market: empty batch"
    assert n == m, "job_market: length mismatch"
