"""A user's actions on a job that went wrong: dispute a result, cancel an unaccepted job, expire
one past its deadline. Each checks the job's state first and says what is possible.
Re-exported by `offchain.client.sdk`."""

from __future__ import annotations

from typing import Any

from offchain.chain.beacon import audit_draw
from offchain.chain.jobs import as_tuple
from offchain.client.money import ClientError, revert_reason, tokens
from offchain.client.sdk import _check_id, _now, _rebuild
from offchain.constants import JobStatus


def dispute(h: Any, account: Any, job_id: int) -> Any:
    """Disputes one's own submitted result before its challenge window ends, posting the bond
    (`dispute_bond(payment)`; approved first if the allowance is short). Returns the receipt."""
    _check_id(h, job_id)
    m, token = h.market, h.token
    job = _rebuild(h, job_id)
    st = JobStatus(m.job_status(job_id))
    if st != JobStatus.SUBMITTED:
        raise ClientError(f"job {job_id} is {st.name}: only a Submitted result can be disputed")
    if _now(h) > job["challenge_end"]:
        raise ClientError(f"job {job_id}: its challenge window ended at {job['challenge_end']} (unix time)")
    if job["user"].lower() != account.address.lower():
        raise ClientError(
            f"job {job_id} belongs to {job['user']}: only a job's user may dispute it, not {account.address}"
        )
    if getattr(h, "beacon", None) is not None and audit_draw(h.beacon, job_id, job, _now(h)):
        raise ClientError(
            f"job {job_id} was drawn for audit: the oracle quorum re-executes it anyway, so a dispute "
            "is neither needed nor accepted; follow it with `gpunet job status`"
        )
    bond = int(m.dispute_bond(job["payment"]))
    if int(token.balanceOf(account.address)) < bond:
        raise ClientError(f"the dispute bond is {tokens(bond)} tokens, more than {account.address}'s balance")
    if int(token.allowance(account.address, m.address)) < bond:
        token.approve(m.address, bond, sender=account)
    try:
        return m.dispute(job_id, as_tuple(job), sender=account)
    except Exception as e:  # noqa: BLE001
        raise ClientError(f"dispute reverted: {revert_reason(e)}") from None


def cancel(h: Any, account: Any, job_id: int) -> Any:
    """Takes back the payment of one's own job that no provider accepted (`cancel` while Open;
    anyone's `expire` does the same once the acceptance window passed). Returns the receipt."""
    _check_id(h, job_id)
    m = h.market
    job = _rebuild(h, job_id)
    st = JobStatus(m.job_status(job_id))
    if st != JobStatus.OPEN:
        raise ClientError(f"job {job_id} is {st.name}: only an Open job (not accepted yet) can be cancelled")
    if job["user"].lower() != account.address.lower():
        raise ClientError(f"job {job_id} belongs to {job['user']}, not {account.address}")
    try:
        return m.cancel(job_id, as_tuple(job), sender=account)
    except Exception as e:  # noqa: BLE001
        raise ClientError(f"cancel reverted: {revert_reason(e)}") from None


def expire(h: Any, account: Any, job_id: int) -> Any:
    """Ends a job whose deadline passed; anyone may (`JobMarket.expire`): an Open job past its
    acceptance window is Cancelled (the user refunded), a Running job past its completion
    deadline is Expired (the user refunded plus the no-show penalty from the provider's
    collateral). Says what is wrong instead of sending a transaction that would revert."""
    _check_id(h, job_id)
    m = h.market
    job = _rebuild(h, job_id)
    st = JobStatus(m.job_status(job_id))
    now = _now(h)
    if st == JobStatus.OPEN:
        deadline, what = int(job["accept_by"]), "acceptance window"
    elif st == JobStatus.RUNNING:
        deadline, what = int(job["complete_by"]), "completion deadline"
    else:
        raise ClientError(
            f"job {job_id} is {st.name}: only an Open job past its acceptance window or a Running job "
            "past its completion deadline can expire"
        )
    if now <= deadline:
        raise ClientError(f"job {job_id}: its {what} ends at {deadline} (unix time), {deadline - now + 1} s from now")
    try:
        return m.expire(job_id, as_tuple(job), sender=account)
    except Exception as e:  # noqa: BLE001
        raise ClientError(f"expire reverted: {revert_reason(e)}") from None
