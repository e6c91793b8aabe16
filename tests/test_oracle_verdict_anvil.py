"""Job audits end to end: anvil, 3 real `gpunet oracle run` processes (quorum 2 of 3).

Every job is drawn (new providers audited at 100%) from AuditBeacon rounds that the three oracle
services reveal (each commits its hash chain at start; the jobs are submitted once every
commitment applies, so no round degrades). The providers' side runs in the test: each
accepts its job, executes it with `offchain.workloads`, submits the result hash and serves the
spec and output from a small HTTP blob server (the routes of the provider agent,
`GET /blobs/<sha256 hex>`), registered as the machine's endpoint. The oracles must open the
audits, re-execute, agree and post verdicts:

- honest output -> valid: Finalized, the provider credited (JobMarket.accrued); a claim (by
  anyone) burns the escrow and Settlement mints the pay (`Settled`), audits_passed = 1;
- corrupted output -> invalid (after escalation): Failed, collateral slashed, failed = 1;
- output never served -> invalid ("output withheld");
- a user's dispute (bond) of an honest, undrawn result -> the same audit -> valid: the
  provider is paid and wins the challenger's bond.

Jobs are priced in USD: offers are USD per compute unit and the operators post a $1.00 token
price (a PriceFeed round signed by all three) before the jobs are funded, so tokens equal USD.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from offchain import workloads as W
from offchain.chain.anvil import running_anvil
from offchain.chain.beacon import ROUND_READY
from offchain.chain.client import DEPLOYMENT_ENV
from offchain.chain.deploy import deploy_all
from offchain.chain.jobs import as_tuple, jobs_from_receipt, update_from_receipt
from offchain.chain.price import ONE_USD, post_price
from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus, MachineStatus
from offchain.devnet import Devnet, stake_operators
from offchain.params import MarketParams
from offchain.workloads.base import canonical_json

pytestmark = pytest.mark.anvil

OPERATOR_ACCOUNTS = (7, 8, 9)
ORACLE_ARGS = ["--poll", "0.5", "--leader-timeout", "15", "--epoch-seconds", "100000", "--audit-fetch-timeout", "2",
               "--audit-device", "cpu"]  # fmt: skip
PRICE = 10**17  # $0.10 per compute unit (USD, 18 decimals); at $1.00 per token, 0.1 token
CPU = 1


class BlobServer:
    """GET /health and GET /blobs/<hex>, as the provider agent serves them."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_GET(self):
                if self.path == "/health":
                    body: bytes | None = b'{"ok": true}'
                else:
                    body = srv.blobs.get(self.path.removeprefix("/blobs/")) if self.path.startswith("/blobs/") else None
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def put(self, data: bytes) -> str:
        h = hashlib.sha256(data).hexdigest()
        self.blobs[h] = data
        return h


def _metric(text: str, name: str) -> float:
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(name + " ") or
               ln.startswith(name + "{"))  # fmt: skip


def _beacon_committed(beacon, chain, ops, devnet) -> int:
    """Waits for every operator's service to commit its AuditBeacon chain, then moves anvil's
    clock to the first round in which every membership and commitment applies; returns it."""

    def committed() -> bool:
        return all(int(beacon.members(o.address).pending_from) != 0 for o in ops)

    devnet.wait_for(committed, 60, "every operator's AuditBeacon commitment")
    members = [beacon.members(o.address) for o in ops]
    first = max(max(int(m.pending_from), int(m.active_from)) for m in members)
    behind = first * int(beacon.ROUND_SECONDS()) - int(chain.pending_timestamp)
    if behind > 0:
        chain.provider.make_request("evm_increaseTime", [behind])
        chain.mine()
    return first


def test_audits__quorum_opens_reexecutes_and_posts_verdicts(tmp_path, monkeypatch):
    from ape import accounts, chain, networks, project

    # The record lives in tmp_path: the child processes find it through GPUNET_DEPLOYMENT.
    record = tmp_path / "deployment.json"
    monkeypatch.setenv(DEPLOYMENT_ENV, str(record))
    devnet = Devnet(tmp_path)
    server = BlobServer()
    t0 = time.monotonic()
    try:
        with running_anvil(log_path=tmp_path / "anvil.log"), networks.parse_network_choice("ethereum:local:foundry"):
            a = accounts.test_accounts
            deployer, user = a[0], a[4]
            ops = [a[i] for i in OPERATOR_ACCOUNTS]
            params = MarketParams(new_provider_audit_bps=10_000, challenge_window=300)
            d = deploy_all(project, deployer, local=True, params=params, operators=[o.address for o in ops],
                           threshold=2, record_path=record, chain_id=chain.chain_id)  # fmt: skip
            token, registry, market, hub = d.token, d.registry, d.market, d.hub
            stake_operators(token, hub, deployer, ops, 1_000 * ONE_TOKEN, mint=2_000 * ONE_TOKEN)
            # A $1.00 token price from the quorum: jobs are funded at Settlement.quote(usd).
            post_price(d.price_feed, chain.chain_id, ops, ONE_USD, chain.blocks.head.timestamp, deployer)

            urls = devnet.start_oracles(OPERATOR_ACCOUNTS, [o.address for o in ops], tmp_path, ORACLE_ARGS)

            # Providers: staked, one Active CPU machine each (set by the deployer, who holds
            # ATTESTER_ROLE on a local deployment), offering PRICE per unit; blobs at `server`.
            honest, cheat, withholder = a[1], a[2], a[3]
            machine = {}
            for p in (honest, cheat, withholder):
                token.mint(p, 1_000 * ONE_TOKEN, sender=deployer)
                token.approve(registry, 2**256 - 1, sender=p)
                registry.stake(100 * ONE_TOKEN, sender=p)
                tx = registry.register(CPU, 1, 256, server.url, sender=p)
                machine[p.address] = tx.decode_logs(registry.MachineRegistered)[0].machine_id
                registry.set_machine_status(machine[p.address], int(MachineStatus.ACTIVE), sender=deployer)
                registry.set_offer(CPU, PRICE, sender=p)
            token.mint(user, 1_000 * ONE_TOKEN, sender=deployer)
            token.approve(market, 2**256 - 1, sender=user)
            for i, o in enumerate(ops):
                devnet.wait_http(f"oracle-{i}", urls[o.address])
            first_round = _beacon_committed(d.beacon, chain, ops, devnet)

            challenger = a[5]
            token.mint(challenger, 1_000 * ONE_TOKEN, sender=deployer)
            token.approve(market, 2**256 - 1, sender=challenger)
            before = {p.address: (token.balanceOf(p), registry.slashable(p)) for p in (honest, cheat, withholder)}
            bond_before = token.balanceOf(challenger)

            jobs: dict[int, dict] = {}

            def run_job(p, seed: int, by=user) -> int:
                """The provider's side of one job: accept, execute, store blobs, submit."""
                spec = {"kind": "matmul_chain", "params": {"n": 64, "k": 4}, "seed": seed}
                server.put(canonical_json(spec))
                units = W.compute_units(spec)
                tx = market.create_job(p, CPU, bytes.fromhex(W.spec_hash(spec)), units, PRICE, 600, 600,
                                       PRICE * units, sender=by)  # fmt: skip
                ((job_id, job),) = jobs_from_receipt(market, tx)
                assert job["usd_value"] == job["payment"] == PRICE * units  # $1.00 per token
                jobs[job_id] = job
                update_from_receipt(market, jobs, market.accept(job_id, as_tuple(job), machine[p.address], sender=p))
                out = W.execute(spec, "cpu")
                if p is cheat:
                    out = copy.deepcopy(out)
                    out.tensors["product"][0, 0] += 1.0
                data = W.output_bytes(out)
                result_hex = server.put(data) if p is not withholder else hashlib.sha256(data).hexdigest()
                tx = market.submit_result(job_id, as_tuple(jobs[job_id]), bytes.fromhex(result_hex),
                                          f"{server.url}/blobs/{result_hex}", sender=p)  # fmt: skip
                update_from_receipt(market, jobs, tx)
                return job_id

            ids = {p.address: run_job(p, 100 + i) for i, p in enumerate((honest, cheat, withholder))}
            # A false dispute: audits off for the next acceptance, an honest result, disputed
            # with a bond -> the same audit path; the provider wins the challenger's bond.
            market.set_params(replace(params, new_provider_audit_bps=0, base_audit_bps=0).as_tuple(), sender=deployer)
            # Only a job's user may dispute it: the challenger disputes a job of its own.
            disputed = run_job(honest, 200, by=challenger)
            assert jobs[disputed]["audit_bps"] == 0
            bond = market.dispute_bond(jobs[disputed]["payment"])
            market.dispute(disputed, as_tuple(jobs[disputed]), sender=challenger)

            terminal = {JobStatus.FINALIZED, JobStatus.FAILED}
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not all(market.job_status(j) in terminal for j in jobs):
                time.sleep(1)
            logs = "\n".join(f"--- {n}\n{devnet.tail(n, 40)}" for n in list(devnet.procs))
            statuses = {j: JobStatus(market.job_status(j)).name for j in jobs}
            assert all(market.job_status(j) in terminal for j in jobs), f"{statuses}\n{logs}"

            height = chain.blocks.height + 1
            # Every job but the disputed one was drawn (audit rate 100%) and audited with no
            # transaction to open it: its verdict came while it was still Submitted.
            opened = set(jobs) - {disputed}
            posted = {int(lg.job_id): int(lg.block_number) for lg in market.VerdictPosted.range(0, height)}
            assert all(market.audit_drawn(j, as_tuple(jobs[j]), block_id=posted[j] - 1) for j in opened), logs
            # Drawn from rounds every operator revealed in (none degraded), each once the round
            # had started: the reveal's block is never older than the round.
            rounds = {int(jobs[j]["draw_round"]) for j in opened}
            assert min(rounds) > first_round
            assert all(int(d.beacon.draw_seed(r)[0]) == ROUND_READY for r in rounds), logs
            reveals = list(d.beacon.Revealed.range(0, height))
            for r in rounds:
                assert {lg.member for lg in reveals if int(lg.round) == r} == {o.address for o in ops}
            seconds = int(d.beacon.ROUND_SECONDS())
            assert all(chain.blocks[lg.block_number].timestamp >= int(lg.round) * seconds for lg in reveals)
            verdicts = {lg.job_id: lg for lg in hub.VerdictAccepted.range(0, height)}
            assert set(verdicts) == set(jobs)
            assert all(v.signers >= 2 for v in verdicts.values())
            assert all(hub.verdict_nonce(j) == 1 for j in jobs)

            # Honest: valid, Finalized: the verdicts credit the provider (escrow, USD net, cap)
            # and release its collateral; nothing is burned or minted until a claim.
            fins = {lg.job_id: lg for lg in market.JobFinalized.range(0, height)}
            h = ids[honest.address]
            assert bool(verdicts[h].valid) is True and market.job_status(h) == JobStatus.FINALIZED
            assert bool(verdicts[disputed].valid) is True and market.job_status(disputed) == JobStatus.FINALIZED
            assert set(fins) == {h, disputed}  # invalid verdicts refund the user: nothing credited
            for j, fin in fins.items():
                assert fin.burned == jobs[j]["payment"] and fin.usd_value == jobs[j]["usd_value"]
                assert fin.fee == fin.burned * params.fee_bps // MAX_BPS
            escrow = sum(f.burned for f in fins.values())
            usd_net = sum(f.usd_value - f.usd_value * params.fee_bps // MAX_BPS for f in fins.values())
            cap = sum(f.burned - f.fee for f in fins.values())
            assert tuple(market.accrued(honest)) == (escrow, usd_net, cap) and escrow > 0
            assert list(d.settlement.Settled.range(0, height)) == []
            assert token.balanceOf(honest) == before[honest.address][0] + bond  # the bond is paid at once
            # Anyone claims for it (here the challenger): one burn of both escrows, one mint to
            # honest of their USD value net of fees at $1.00 = their escrow minus fees.
            supply = token.totalSupply()
            tx = market.claim(honest, sender=challenger)
            (s,) = tx.decode_logs(d.settlement.Settled)
            assert s.event_arguments["provider"] == honest.address and s.price == ONE_USD
            assert (s.burned, s.usd_net, s.cap) == (escrow, usd_net, cap) and s.minted == cap > 0
            assert token.totalSupply() == supply - escrow + cap
            assert tuple(market.accrued(honest)) == (0, 0, 0)
            assert token.balanceOf(honest) == before[honest.address][0] + s.minted + bond
            assert token.balanceOf(challenger) == bond_before - jobs[disputed]["payment"] - bond
            assert registry.slashable(honest) == before[honest.address][1]
            # completed, failed, expired, audits passed, disputes won, disputes lost
            # Both jobs are worth less than `min_reputation_usd` ($1): paid, but not `completed`.
            assert all(jobs[j]["usd_value"] < params.min_reputation_usd for j in (h, disputed))
            assert tuple(registry.reputation(honest)) == (0, 0, 0, 2, 1, 0)

            # Cheat and withholder: invalid, Failed, the collateral slashed, failed = 1.
            for p in (cheat, withholder):
                j = ids[p.address]
                assert bool(verdicts[j].valid) is False and market.job_status(j) == JobStatus.FAILED
                (failed,) = [lg for lg in market.JobFailed.range(0, height) if lg.job_id == j]
                assert failed.user_compensation + failed.burned == jobs[j]["collateral"] > 0
                assert registry.slashable(p) == before[p.address][1] - jobs[j]["collateral"]
                assert tuple(registry.reputation(p))[:2] == (0, 1)

            # Each job is audited by its committee (threshold = 2 operators), not by all three;
            # each auditor serves its own evidence at GET /audits/<job_id>.
            expected = {
                h: (True, "match", 2),
                ids[cheat.address]: (False, "mismatch", 3),  # escalated to a third execution
                ids[withholder.address]: (False, "output withheld", None),
            }
            records: dict[int, list[dict]] = {j: [] for j in jobs}
            overhead = []
            for o in ops:
                for j in jobs:
                    r = requests.get(f"{urls[o.address]}/audits/{j}", timeout=5)
                    if r.status_code == 200 and "valid" in r.json():
                        records[j].append(r.json())
                m = requests.get(f"{urls[o.address]}/metrics", timeout=5).text
                overhead.append(
                    {
                        "executed_units": _metric(m, "gpunet_oracle_audit_executed_units_total"),
                        "audited_job_units": _metric(m, "gpunet_oracle_audited_job_units_total"),
                        "submitted_job_units": _metric(m, "gpunet_oracle_submitted_job_units_total"),
                        "audit_seconds_sum": _metric(m, "gpunet_oracle_audit_seconds_sum"),
                        "audits": _metric(m, "gpunet_oracle_audits_total"),
                        "beacon_reveals": _metric(m, "gpunet_oracle_beacon_reveals_total"),
                        "beacon_missed": _metric(m, "gpunet_oracle_beacon_rounds_missed_total"),
                    }
                )
            for j, recs in records.items():
                assert 2 <= len(recs) <= 3, (j, len(recs))  # the committee, plus any peer asked later
                if j in expected:
                    valid, reason, executions = expected[j]
                    for rec in recs:
                        assert (rec["valid"], rec["reason"]) == (valid, reason), (j, rec["reason"])
                        if executions is not None:
                            assert len(rec["evidence"]["executions"]) == executions
            print("audit overhead per operator:", json.dumps(overhead), f"elapsed {time.monotonic() - t0:.1f}s")
            total_audits = sum(fig["audits"] for fig in overhead)
            assert 2 * len(jobs) <= total_audits < 3 * len(jobs), total_audits  # committee, not everyone
            for fig in overhead:
                assert fig["submitted_job_units"] == sum(j["compute_units"] for j in jobs.values())
                assert fig["beacon_reveals"] >= len(rounds) and fig["beacon_missed"] == 0
    finally:
        devnet.stop_all()
        server.httpd.shutdown()
        server.httpd.server_close()
