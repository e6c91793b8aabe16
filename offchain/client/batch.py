"""Submitting many jobs at once: one provider's offer, one `create_jobs` transaction.

`submit` (offchain/client/sdk.py) ranks the offers, quotes, uploads and funds one job with a
permit: about a second of work and a block per job. `submit_batch` does each of those once for
up to `MAX_BATCH` jobs: one ranking, one price quote, one upload session to the provider, and
one `JobMarket.create_jobs` transaction that escrows the total with one token transfer,
bounded by `max_tokens` (the quotes plus the slippage allowance). `create_jobs` has no permit
form: the market needs an allowance, and when it is short `submit_batch` first sends one
`approve` for `allowance` (default: exactly this batch's bound).
"""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from offchain.chain.jobs import jobs_from_receipt
from offchain.client.money import DEFAULT_MAX_SLIPPAGE_BPS, ClientError, fmt_usd, slippage_bound, token_quote, tokens
from offchain.client.sdk import Submission, _windows, check_spec, choose, funding_error, request_signer, upload
from offchain.constants import MAX_BATCH


def submit_batch(
    h: Any,
    account: Any,
    specs: list[dict],
    *,
    provider: str,
    class_id: int = 1,
    max_price: int | None = None,
    accept_window: int | None = None,
    complete_within: int | None = None,
    max_slippage_bps: int = DEFAULT_MAX_SLIPPAGE_BPS,
    allowance: int | None = None,
    session: requests.Session | None = None,
) -> list[Submission]:
    """Funds one job per spec (no input blobs) on `provider`'s offer for `class_id`, in one
    transaction, and returns their submissions in the order of `specs`. Does not wait.

    `allowance`: what to approve the market for when its allowance is below this batch's bound
    (default: exactly the bound; a larger one saves the approval on later batches)."""
    if not specs:
        raise ClientError("no jobs to submit: give at least one spec")
    if len(specs) > MAX_BATCH:
        raise ClientError(f"at most {MAX_BATCH} jobs per batch (JobMarket.MAX_BATCH), got {len(specs)}")
    from offchain.chain.sender import Sender
    from offchain.workloads.base import canonical_json

    units = [check_spec(spec, {}) for spec in specs]
    blobs = {}
    hashes = []
    for spec in specs:
        data = canonical_json(spec)
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        hashes.append(digest)
    accept_window, complete_within = _windows(h, accept_window, complete_within)
    offers, targets, price = choose(h, class_id, sum(units), provider=provider, open_job=False, max_price=max_price)
    offer = targets[0]
    per_unit = token_quote(h, offer.price)
    quote = per_unit * sum(units)
    max_tokens = slippage_bound(quote, max_slippage_bps)
    balance = int(h.token.balanceOf(account.address))
    if balance < quote:
        raise ClientError(
            f"balance {tokens(balance)} tokens is below the batch's payment {tokens(quote)} tokens "
            f"({len(specs)} jobs, {sum(units)} units = {fmt_usd(offer.price * sum(units))})"
        )
    upload(offer.endpoint, blobs, session=session, signer=request_signer(h, account), provider=offer.provider)
    if int(h.token.allowance(account.address, h.market.address)) < max_tokens:
        h.token.approve(h.market.address, max(max_tokens, allowance or 0), sender=account)
    try:
        receipt = Sender.of(account, h.chain.provider).transact(
            h.market.create_jobs, offer.provider, class_id, [bytes.fromhex(x) for x in hashes], units, price,
            accept_window, complete_within, max_tokens, items=len(specs),
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001 - a revert: show the contract's reason
        raise funding_error(e, "create_jobs", "the batch", quote, max_tokens, "max_slippage_bps") from None
    created = jobs_from_receipt(h.market, receipt)
    if len(created) != len(specs):
        raise ClientError(f"the funding transaction created {len(created)} jobs, not {len(specs)}")
    return [
        Submission(
            job_id=int(job_id),
            provider=offer.provider,
            class_id=class_id,
            price=int(job["usd_value"]) // u,
            units=u,
            payment=int(job["payment"]),
            spec_hash=digest,
            usd_value=int(job["usd_value"]),
            max_tokens=max_tokens,
            uploaded_to=[offer.provider],
            offers=offers,
            tx_hash=str(receipt.txn_hash),
        )
        for (job_id, job), u, digest in zip(created, units, hashes, strict=True)
    ]


__all__ = ["submit_batch"]
