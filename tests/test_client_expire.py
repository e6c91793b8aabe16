"""`sdk.expire` / `gpunet job expire`: anyone ends a job whose deadline passed, on the
in-process chain with the real contracts. An accepted job never delivered is Expired (the user
refunded plus the no-show penalty); an Open job past its window is Cancelled; anything else gets
a message that says why, and no transaction."""

from types import SimpleNamespace

import pytest
from conftest import ACCEPT_WINDOW, COMPLETE_WITHIN

from offchain.client import sdk
from offchain.constants import JobStatus


@pytest.fixture
def h(deployment, chain):
    d = deployment
    return SimpleNamespace(token=d.token, registry=d.registry, market=d.market, hub=d.hub, chain=chain, record={})


def _warp(chain, seconds):
    chain.pending_timestamp += seconds
    chain.mine()


def test_expire__running_past_deadline__expired_refund_and_penalty(h, chain, jobs, running_job, user, keeper, token):
    job_id, _ = running_job
    payment, collateral = jobs[job_id]["payment"], jobs[job_id]["collateral"]
    _warp(chain, COMPLETE_WITHIN + 2)
    before = token.balanceOf(user)
    receipt = sdk.expire(h, keeper, job_id)  # anyone may
    (ev,) = receipt.decode_logs(h.market.JobExpired)
    penalty = collateral * h.market.params().noshow_penalty_bps // 10_000
    assert int(ev.event_arguments["refund"]) == payment and int(ev.event_arguments["penalty"]) == penalty
    assert token.balanceOf(user) - before == payment + penalty
    assert h.market.job_status(job_id) == JobStatus.EXPIRED


def test_expire__open_past_window__cancelled_refund(h, chain, make_provider, make_job, provider, user, keeper, token):
    make_provider(provider)
    job_id, job = make_job(user)
    _warp(chain, ACCEPT_WINDOW + 2)
    before = token.balanceOf(user)
    sdk.expire(h, keeper, job_id)
    assert h.market.job_status(job_id) == JobStatus.CANCELLED
    assert token.balanceOf(user) - before == job["payment"]


def test_expire__not_overdue__says_when_and_sends_nothing(h, running_job, keeper):
    job_id, _ = running_job
    nonce = keeper.nonce
    with pytest.raises(sdk.ClientError, match=rf"job {job_id}: its completion deadline ends at \d+ \(unix time\)"):
        sdk.expire(h, keeper, job_id)
    assert keeper.nonce == nonce


def test_expire__submitted_job__refused(h, chain, submitted_job, keeper):
    job_id, _ = submitted_job
    _warp(chain, COMPLETE_WITHIN + 2)
    with pytest.raises(sdk.ClientError, match="is SUBMITTED: only an Open job past its acceptance window"):
        sdk.expire(h, keeper, job_id)


def test_expire__unknown_job__refused(h, keeper):
    with pytest.raises(sdk.ClientError, match=r"job 9999 does not exist"):
        sdk.expire(h, keeper, 9999)
