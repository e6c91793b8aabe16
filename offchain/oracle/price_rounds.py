"""Part of the oracle service (`offchain/oracle/service.py`, which documents the whole loop):
PriceFeed rounds: this operator's signed observations, leading a round, co-signing
(`handle_sign_price`).

One observation per round id, ever: a second, different observation for the same id is
equivocation (OracleHub.prove_observation_equivocation slashes it). A round id whose
observations expired before they were submitted, or disagreed (spread above the feed's
`max_spread_bps`), is abandoned: the next attempt uses a higher id (PriceFeed accepts any id above
`latest_round`). Rounds are at least the feed's `min_round_interval` apart: the leader never
submits one the contract would refuse as too soon.

A mixin of `OracleService`: it uses the service's chain handles, store, metrics and signing.
"""

from __future__ import annotations

import json
import time

from eth_account import Account

from offchain.chain.reports import (
    PRICE_FIELDS,
    price_typed_data,
    report_tuple,
    typed_data_digest,
)
from offchain.oracle.common import (
    PRICE_CHECK_S,
    PRICE_CLOCK_SLACK_S,
    PRICE_MAX_ROUNDS_AHEAD,
    PRICE_SUBMIT_MARGIN_S,
    log,
)
from offchain.oracle.pricing import PriceSourceError, within_deviation

PARAMS_TTL_S = 60.0  # PriceFeed's parameters are read again after this long


class PriceRoundsMixin:
    def _price_subject(self, round_id: int) -> str:
        return f"price:{round_id}"

    def _price_digest(self, observation: dict) -> bytes:
        # Computed locally under PriceFeed's domain: never trust an RPC to say what is signed.
        return typed_data_digest(price_typed_data(self.h.price_feed.address, self.chain_id, observation))

    def _read_price(self) -> int | None:
        try:
            return self._price_source()
        except PriceSourceError as e:
            self.metrics.price_source_errors.inc()
            log.warning(json.dumps({"event": "price_source_error", "error": str(e)[:300]}))
            return None

    def _observation_expired(self, round_id: int, max_observation_age: int, head: int) -> bool:
        """True when this operator's one observation for `round_id` exists and can no longer be
        submitted (older than `max_observation_age` on every later block): the id is abandoned."""
        rec = self.store.signed_for(self._price_subject(round_id), 0)
        if rec is None:
            return False
        now = max(head, int(time.time()) - PRICE_CLOCK_SLACK_S)
        return int(rec.report["observed_at"]) + max_observation_age < now

    def own_observation(self, round_id: int, max_observation_age: int, head: int):
        """This operator's signed observation for `round_id` (a `SignedReport`), or None when its
        source fails or its observation for `round_id` has expired. Exactly one observation per
        round id, ever (attempt 0 in the `signed` table): signing another for the same id would
        be equivocation; an expired id is abandoned for a higher one."""
        subject = self._price_subject(round_id)
        wall = int(time.time())
        with self._price_lock:
            rec = self.store.signed_for(subject, 0)
            if rec is not None:
                return None if self._observation_expired(round_id, max_observation_age, head) else rec
            price = self._read_price()
            if price is None:
                return None
            observation = {"round_id": round_id, "price": price, "observed_at": max(head, wall - PRICE_CLOCK_SLACK_S)}
            digest = "0x" + self._price_digest(observation).hex()
            rec = self.store.sign_once(
                subject, 0, digest, observation, lambda d: self.sign_digest(bytes.fromhex(d[2:]))
            )
            self.metrics.price_observations.inc()
            return rec

    def _next_price_round(self, st: dict) -> int:
        """The round id this operator leads next: above the chain's latest and every id it
        abandoned (its own observation expired, or the round's observations disagreed)."""
        r = max(st["latest"] + 1, self._price_floor)
        while self._observation_expired(r, st["max_observation_age"], st["head"]):
            r += 1
        self._price_floor = r
        return r

    def _price_params(self) -> dict:
        """PriceFeed's parameters, read again every PARAMS_TTL_S (they move only by a
        timelocked `set_params`, announced days ahead)."""
        feed = self.h.price_feed
        cached = getattr(self, "_price_params_cache", None)
        if cached is None or time.monotonic() - cached[0] > PARAMS_TTL_S:
            cached = self._price_params_cache = (time.monotonic(), {
                "max_observation_age": int(feed.max_observation_age()),
                "max_age": int(feed.max_age()),
                "max_deviation_bps": int(feed.max_deviation_bps()),
                "max_spread_bps": int(feed.max_spread_bps()),
                "min_round_interval": int(feed.min_round_interval()),
            })  # fmt: skip
        return cached[1]

    def _price_state(self) -> dict:
        feed = self.h.price_feed
        with self._chain_lock:
            latest = int(feed.latest_round())
            head = getattr(self, "_cycle_head_ts", None)
            st = {
                "latest": latest,
                "head": int(head if head is not None else self.h.chain.blocks.head.timestamp),
                **self._price_params(),
                "answer": 0,
                "updated_at": 0,
            }
            if latest:
                data = feed.latestRoundData()
                st["answer"], st["updated_at"] = int(data[1]), int(data[3])
        return st

    def price_round(self, clock: int) -> None:
        """Leads the next PriceFeed round when it is due and this operator is its leader."""
        if self._price_source is None or getattr(self.h, "price_feed", None) is None:
            return
        st = self._price_state()
        if st["latest"]:
            self.metrics.price_last.set(st["answer"] / 10**8)
            self.metrics.price_round.set(st["latest"])
        round_id = self._next_price_round(st)
        subject = self._price_subject(round_id)
        if self.store.submitted(subject, 0):
            return  # submitted: waiting for the chain to show it
        if st["latest"] and clock < st["updated_at"] + st["min_round_interval"]:
            return  # the feed would refuse it: too soon after the last round
        due_at = st["updated_at"] + self.cfg.price_interval_s if st["latest"] else 0
        if clock >= due_at:
            waited = clock - due_at if st["latest"] else clock
        else:
            # Early round when the own source moved more than price_deviation_bps (checked every
            # PRICE_CHECK_S): only the round's first leader acts on it.
            if time.monotonic() - self._price_checked_at < PRICE_CHECK_S:
                return
            self._price_checked_at = time.monotonic()
            price = self._read_price()
            if price is None or within_deviation(price, st["answer"], self.cfg.price_deviation_bps):
                return
            waited = 0
        # Leadership by the chain's next round (every operator agrees on it), whatever id is used.
        if self.leader_for(st["latest"] + 1, 0, waited) != self.address:
            return
        self._lead_price_round(round_id, st, clock)

    def _lead_price_round(self, round_id: int, st: dict, clock: int) -> None:
        max_age = st["max_observation_age"]
        # An observation goes in only if it stays acceptable until the transaction is mined.
        oldest = max(st["head"], clock) + PRICE_SUBMIT_MARGIN_S - max_age
        newest = max(st["head"], int(time.time()))
        collected: dict[str, tuple[dict, str]] = {}

        def accept(signer: str, obs: dict, sig: str) -> None:
            try:
                o = {"round_id": int(obs["round_id"]), "price": int(obs["price"]),
                     "observed_at": int(obs["observed_at"])}  # fmt: skip
                recovered = Account._recover_hash(
                    self._price_digest(o), signature=bytes.fromhex(sig.removeprefix("0x"))
                )
            except (KeyError, TypeError, ValueError) as e:
                log.info(json.dumps({"event": "bad_price_observation", "peer": signer, "error": str(e)[:200]}))
                return
            if recovered.lower() != signer.lower():
                log.warning(json.dumps({"event": "bad_peer_signature", "peer": signer, "kind": "price"}))
            elif o["round_id"] != round_id or o["price"] <= 0 or not oldest <= o["observed_at"] <= newest:
                log.info(json.dumps({"event": "unusable_price_observation", "peer": signer, "observation": o}))
            else:
                collected[recovered] = (o, sig)

        mine = self.own_observation(round_id, max_age, st["head"])
        if mine is not None:
            accept(self.address, mine.report, mine.signature)

        answers = self._ask_peers("sign/price", {"round_id": round_id})
        for peer, ans in answers:
            if ans and isinstance(ans.get("observation"), dict) and ans.get("signature"):
                accept(peer, ans["observation"], ans["signature"])
            else:
                log.info(json.dumps({"event": "peer_refused", "peer": peer, "kind": "price", "answer": ans}))
                if ans and ans.get("expired"):
                    # That peer abandoned this id: the next attempt uses a higher one.
                    self._price_floor = max(self._price_floor, round_id + 1)
        with self._chain_lock:
            threshold = int(self.h.hub.threshold())
            operators = int(self.h.hub.operator_count())
        if len(collected) < threshold:
            log.info(json.dumps({"event": "no_quorum_yet", "kind": "price", "round_id": round_id,
                                 "observations": len(collected), "threshold": threshold}))  # fmt: skip
            return
        ordered = sorted(collected.items(), key=lambda kv: int(kv[0], 16))
        prices = sorted(o["price"] for _, (o, _) in ordered)
        median = prices[(len(prices) - 1) // 2]
        if (prices[-1] - prices[0]) * 10_000 > prices[0] * st["max_spread_bps"]:
            # The contract would refuse it (observations disagree). The signed observations of
            # this id can never be replaced: abandon it, observe again for the next id.
            self._price_floor = max(self._price_floor, round_id + 1)
            event = {"event": "price_observations_disagree", "round_id": round_id, "low": prices[0]}
            log.warning(json.dumps({**event, "high": prices[-1], "max_spread_bps": st["max_spread_bps"]}))
            return
        fresh = st["latest"] and max(st["head"], clock) <= st["updated_at"] + st["max_age"]
        if fresh and len(ordered) < operators and not within_deviation(median, st["answer"], st["max_deviation_bps"]):
            # The contract would refuse it: a move this large needs every operator (or a stale feed).
            event = {"event": "price_deviation_needs_all_operators", "round_id": round_id, "median": median}
            log.warning(json.dumps({**event, "previous": st["answer"], "observations": len(ordered)}))
            return
        subject = self._price_subject(round_id)
        obs_tuples = [report_tuple(PRICE_FIELDS, o) for _, (o, _) in ordered]
        sigs = [bytes.fromhex(s.removeprefix("0x")) for _, (_, s) in ordered]
        with self._chain_lock:
            try:
                tx = self.h.price_feed.submit_round(round_id, obs_tuples, sigs, sender=self.sender)
            except Exception as e:  # noqa: BLE001
                if "wrong round" in str(e):  # another leader got there first
                    self.store.mark_submitted(subject, 0, "by-peer")
                    return
                if "too soon after the last round" in str(e):  # the chain's clock lags ours
                    return
                raise
        self.store.mark_submitted(subject, 0, str(tx.txn_hash))
        self.metrics.price_rounds_submitted.inc()
        self.metrics.reports_submitted.labels(kind="price").inc()
        self.metrics.price_last.set(median / 10**8)
        self.metrics.price_round.set(round_id)
        log.info(json.dumps({"event": "submitted", "kind": "price", "round_id": round_id, "answer": median,
                             "observations": len(ordered), "gas": tx.gas_used}))  # fmt: skip

    def handle_sign_price(self, body: dict) -> tuple[int, dict]:
        """A leader asks for this operator's own observation of round `round_id`: given for any
        id above the chain's latest round (ids of abandoned attempts are skipped), at most one
        per id; refused ({"expired": true}) once the one given for that id can no longer be
        submitted."""
        try:
            round_id = int(body["round_id"])
        except (KeyError, TypeError, ValueError) as e:
            return 400, {"error": f"malformed request: {e}"}
        if self._price_source is None or getattr(self.h, "price_feed", None) is None:
            return 409, {"refused": "this operator has no price source or the deployment has no PriceFeed"}
        st = self._price_state()
        if not st["latest"] < round_id <= st["latest"] + PRICE_MAX_ROUNDS_AHEAD:
            self.metrics.signatures_refused.labels(kind="price", reason="invalid").inc()
            return 409, {"refused": f"round {round_id} is not after the latest round {st['latest']}"}
        if self._observation_expired(round_id, st["max_observation_age"], st["head"]):
            self.metrics.signatures_refused.labels(kind="price", reason="expired").inc()
            return 409, {"refused": f"my observation for round {round_id} expired: use a later round", "expired": True}
        rec = self.own_observation(round_id, st["max_observation_age"], st["head"])
        if rec is None:
            return 503, {"refused": "my price source is unavailable", "retry": True}
        self.metrics.signatures_given.labels(kind="price").inc()
        return 200, {"observation": rec.report, "signature": rec.signature, "operator": self.address}
