"""`gpunet job list`, `job logs`, `provider jobs` and `provider earnings` report what really
happened, on anvil with the real contracts.

One module-wide story (test accounts: 0 deployer = attester and verifier, 1 provider P,
2 provider P2, 3 user U, 9 the one-operator oracle quorum that signs prices and rewards):
- job 1 (P, its first job: new providers are audited on 100%): drawn (its AuditBeacon round
  revealed by the one operator, whose `BeaconDuty` runs in the test), verdict
  valid, finalized (P credited), then claimed for P by the deployer with `gpunet provider claim
  --for P` (anyone may; the tokens go to P);
- job 2 (P, now trusted: 0%): not drawn, finalized after the challenge window; P's
  `gpunet provider status` shows the credit, and P claims it with `gpunet provider claim`;
- job 3 (P): disputed by U, verdict invalid -> failed, P slashed (INVALID_RESULT);
- job 4 (P): accepted, never delivered, expired -> P slashed (NO_SHOW);
- Emissions epoch 0 ends, is finalized, its rewards root posted, P claims (in epoch 1);
- job 5: an open job nobody accepted; job 6 (P): running; job 7 (P2): submitted, drawn, in its
  challenge window.
The commands run in-process through click's CliRunner with `session` yielding these handles.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from click.testing import CliRunner
from eth_utils import keccak

from offchain.chain import jobs as J
from offchain.chain import reports as R
from offchain.chain.anvil import running_anvil
from offchain.chain.client import DEPLOYMENT_ENV, Handles
from offchain.chain.deploy import deploy_all
from offchain.chain.price import ONE_USD, post_price
from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus, MachineStatus
from offchain.economics import rewards as E
from offchain.oracle.beacon_duty import BeaconDuty
from offchain.oracle.store import Store
from offchain.params import EmissionsParams, MarketParams, OracleParams

pytestmark = pytest.mark.anvil

CPU = 1
PRICE = 10**15  # $0.001 per compute unit
UNITS = 1_000  # a $1 job
EPOCH = 3600
WINDOW = 60
PARAMS = MarketParams(
    base_audit_bps=0,
    new_provider_audit_bps=10_000,
    trusted_after_jobs=1,
    bad_record_audit_bps=0,
    challenge_window=WINDOW,
    min_accept_window=WINDOW,
    min_complete_within=WINDOW,
)
P, P2, U, ORACLE = 1, 2, 3, 9


@dataclass
class Story:
    h: Handles
    a: Any  # test accounts
    chain: Any
    jobs: dict  # {job_id: current struct}
    settled: list  # Settled event arguments, in order
    slashed: list  # Slashed event arguments, in order
    claimed: int
    genesis: int
    machine: int
    duty: Any = None  # the operator's AuditBeacon reveals
    cli: dict = field(default_factory=dict)  # `gpunet provider status/claim` runs during the story

    def reveal_draw(self, jid: int) -> None:
        """Mines to the start of the job's beacon round and has the operator reveal for it."""
        r = int(self.jobs[jid]["draw_round"])
        start = r * int(self.h.beacon.ROUND_SECONDS())
        head = int(self.chain.blocks.head.timestamp)
        if head < start:
            self.warp(start - head)
        self.duty.tick()
        assert int(self.h.beacon.draw_seed(r)[0]) == 1, f"round {r} not revealed"

    def track(self, receipt):
        for jid, job in J.jobs_from_receipt(self.h.market, receipt):
            self.jobs[jid] = job
        J.update_from_receipt(self.h.market, self.jobs, receipt)
        self.settled += [dict(x.event_arguments) for x in receipt.decode_logs(self.h.settlement.Settled)]
        self.slashed += [dict(x.event_arguments) for x in receipt.decode_logs(self.h.registry.Slashed)]
        return receipt

    def t(self, jid):
        return J.as_tuple(self.jobs[jid])

    def warp(self, seconds: int) -> None:
        self.chain.provider.make_request("evm_increaseTime", [seconds])
        self.chain.mine()


def _provider(s: Story, i: int) -> int:
    d, r = s.a[0], s.h.registry
    s.h.token.mint(s.a[i], 2_000 * ONE_TOKEN, sender=d)
    s.h.token.approve(r, 2**256 - 1, sender=s.a[i])
    r.stake(1_000 * ONE_TOKEN, sender=s.a[i])
    mid = int(
        r.register(CPU, 1, 256, "http://127.0.0.1:1", sender=s.a[i]).decode_logs(r.MachineRegistered)[0].machine_id
    )
    r.set_machine_status(mid, MachineStatus.ACTIVE, sender=d)
    r.set_offer(CPU, PRICE, sender=s.a[i])
    return mid


def _create(s: Story, target: str, accept_window: int = 3600) -> int:
    m = s.h.market
    tx = s.track(
        m.create_job(target, CPU, b"\x11" * 32, UNITS, PRICE, accept_window, WINDOW, 2**256 - 1, sender=s.a[U])
    )
    return int(tx.decode_logs(m.JobCreated)[0].job_id)


def _accept_submit(s: Story, jid: int, who: int, machine: int, submit: bool = True) -> None:
    m = s.h.market
    s.track(m.accept(jid, s.t(jid), machine, sender=s.a[who]))
    if submit:
        s.track(m.submit_result(jid, s.t(jid), b"\x22" * 32, f"http://p/result/{jid}", sender=s.a[who]))


def _claim_epoch0(s: Story) -> int:
    em, op = s.h.emissions, s.a[ORACLE]
    s.warp(max(s.genesis + EPOCH - int(s.chain.blocks.head.timestamp), 0) + 1)
    em.finalize_epoch(0, sender=op)
    rw = E.build_rewards(0, {s.a[P].address: 10**15}, {s.a[P].address: 1})
    report = rw.report()
    sig = R.sign_report(op.private_key, E.rewards_typed_data(em.address, s.chain.chain_id, report))
    em.submit_rewards(E.report_tuple(report), [sig], sender=op)
    tx = em.claim(*rw.claim_args(s.a[P].address), sender=op)
    return int(tx.decode_logs(em.Claimed)[0].amount)


def _cli(s: Story, name: str, *args: str) -> None:
    """Runs `gpunet *args` on the story's handles now; keeps (exit code, output, P's balance
    and accrued credit after it, the Settled events it logged) in s.cli[name]."""
    import offchain.cli.provider as provider_cli
    from offchain.cli import cli

    b0 = int(s.chain.blocks.height) + 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(provider_cli, "session", lambda chain: contextlib.nullcontext(s.h))
        res = CliRunner().invoke(cli, list(args))
    settled = [dict(x.event_arguments) for x in s.h.settlement.Settled.range(b0, int(s.chain.blocks.height) + 1)]
    s.settled += settled
    p = s.a[P].address
    s.cli[name] = (res.exit_code, res.output, int(s.h.token.balanceOf(p)), tuple(s.h.market.accrued(p)), settled)


def _play(s: Story) -> None:
    m, d, u = s.h.market, s.a[0], s.a[U]
    p_addr = s.a[P].address
    m2 = _provider(s, P2)
    # 1: drawn (P's first job, 100%), audited, valid.
    j1 = _create(s, p_addr)
    _accept_submit(s, j1, P, s.machine)
    s.reveal_draw(j1)
    s.track(m.post_verdict(j1, s.t(j1), True, sender=d))
    s.cli["before_claim_1"] = int(s.h.token.balanceOf(p_addr))
    _cli(s, "claim_1", "provider", "claim", "--for", p_addr.lower(), "--test-account", "0", "--yes", "--json")
    # 2: not drawn (P is trusted now), finalized after the challenge window.
    j2 = _create(s, p_addr)
    _accept_submit(s, j2, P, s.machine)
    s.warp(WINDOW + 1)
    s.track(m.finalize(j2, s.t(j2), sender=d))
    _cli(s, "status", "provider", "status", "--test-account", str(P), "--json")
    _cli(s, "claim_2", "provider", "claim", "--test-account", str(P), "--yes")
    # 3: disputed by the user, invalid.
    j3 = _create(s, p_addr)
    _accept_submit(s, j3, P, s.machine)
    s.track(m.dispute(j3, s.t(j3), sender=u))
    s.track(m.post_verdict(j3, s.t(j3), False, sender=d))
    # 4: never delivered, expired.
    j4 = _create(s, p_addr)
    _accept_submit(s, j4, P, s.machine, submit=False)
    s.warp(WINDOW + 1)
    s.track(m.expire(j4, s.t(j4), sender=d))
    # Emissions epoch 0 -> claimed in epoch 1.
    s.claimed = _claim_epoch0(s)
    # 5 open, 6 running, 7 submitted (P2's first job: drawn, no verdict yet).
    _create(s, "0x" + "00" * 20)
    j6 = _create(s, p_addr)
    _accept_submit(s, j6, P, s.machine, submit=False)
    j7 = _create(s, s.a[P2].address)
    _accept_submit(s, j7, P2, m2)
    s.reveal_draw(j7)
    assert [JobStatus(m.job_status(j)).name for j in range(1, 8)] == [
        "FINALIZED", "FINALIZED", "FAILED", "EXPIRED", "OPEN", "RUNNING", "SUBMITTED",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    from ape import accounts, chain, networks, project

    tmp = tmp_path_factory.mktemp("reports")
    record = tmp / "deployment.json"
    old = os.environ.get(DEPLOYMENT_ENV)
    os.environ[DEPLOYMENT_ENV] = str(record)
    try:
        with running_anvil(log_path=tmp / "anvil.log"), networks.parse_network_choice("ethereum:local:foundry"):
            a = accounts.test_accounts
            op = a[ORACLE]
            d = deploy_all(project, a[0], local=True, params=PARAMS, operators=[op.address], record_path=record,
                           chain_id=chain.chain_id, settlement_max_age=7 * 86400,
                           emissions_params=EmissionsParams(epoch_seconds=EPOCH))  # fmt: skip
            stake = OracleParams().min_operator_stake
            d.token.mint(op, stake, sender=a[0])
            d.token.approve(d.hub, stake, sender=op)
            d.hub.stake(stake, sender=op)
            h = d.handles(chain)
            post_price(h.price_feed, chain.chain_id, [op], ONE_USD // 2, chain.blocks.head.timestamp, op)
            h.token.mint(a[U], 1_000 * ONE_TOKEN, sender=a[0])
            h.token.approve(h.market, 2**256 - 1, sender=a[U])
            s = Story(h, a, chain, {}, [], [], 0, int(d.emissions.GENESIS()), 0)
            # The operator commits its hash chain; it is a member, and its chain applies, two
            # rounds from now.
            s.duty = BeaconDuty(beacon=d.beacon, market=d.market, chain=chain, store=Store(tmp / "op.sqlite"),
                                key=op.private_key, address=op.address, sender=op, dev_chain=True,
                                chain_length=64, refresh_below=1)  # fmt: skip
            s.duty.tick()
            s.warp(3 * int(d.beacon.ROUND_SECONDS()))
            s.machine = _provider(s, P)
            _play(s)
            yield s
    finally:
        if old is None:
            os.environ.pop(DEPLOYMENT_ENV, None)
        else:
            os.environ[DEPLOYMENT_ENV] = old


@pytest.fixture
def gpunet(story, monkeypatch):
    """gpunet(*args) -> click Result, the commands reading the story's handles."""
    import offchain.cli.reports as reports
    from offchain.cli import cli

    monkeypatch.setattr(reports, "session", lambda chain: contextlib.nullcontext(story.h))

    def _run(*args: str, code: int = 0):
        res = CliRunner().invoke(cli, list(args))
        assert res.exit_code == code, f"{args} -> {res.exit_code}\n{res.output}\n{res.exception!r}"
        return res

    return _run


def _json(res) -> dict:
    return json.loads(res.output)


# ---------------------------------------------------------------------------- job list / provider jobs


def test_job_list__signers_jobs_by_state(story, gpunet):
    rows = _json(gpunet("job", "list", "--test-account", str(U), "--json"))["jobs"]
    assert [(r["job_id"], r["status"]) for r in rows] == [
        (5, "OPEN"), (6, "RUNNING"), (7, "SUBMITTED"), (2, "FINALIZED"), (1, "FINALIZED"), (3, "FAILED"),
        (4, "EXPIRED"),
    ]  # fmt: skip
    by_id = {r["job_id"]: r for r in rows}
    assert by_id[5]["provider"] is None and by_id[7]["provider"] == story.a[P2].address
    assert by_id[1]["usd_value"] == UNITS * PRICE and by_id[1]["payment"] == story.jobs[1]["payment"] == 2 * ONE_TOKEN
    assert by_id[6]["machine_id"] == story.machine
    text = gpunet("job", "list", "--user", story.a[U].address).output
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert "OPEN" in text and "(open)" in text and "$1.00" in text and "2.000000" in text


def test_job_list__state_filter_and_nobody(story, gpunet):
    rows = _json(gpunet("job", "list", "--user", story.a[U].address, "--state", "finalized", "--state", "OPEN",
                        "--json"))["jobs"]  # fmt: skip
    assert [r["job_id"] for r in rows] == [5, 2, 1]
    assert "has no jobs" in gpunet("job", "list", "--user", story.a[P2].address).output
    res = gpunet("job", "list", code=2)
    assert "--user ADDR, or a signer" in res.output
    assert "is not an address" in gpunet("job", "list", "--user", "0x12", code=2).output
    assert "is not an address" in gpunet("provider", "earnings", "0xZZ", code=2).output


def test_provider_jobs__offered_and_accepted(story, gpunet):
    rows = _json(gpunet("provider", "jobs", story.a[P].address, "--json"))["jobs"]
    assert sorted(r["job_id"] for r in rows) == [1, 2, 3, 4, 6]
    assert {r["user"] for r in rows} == {story.a[U].address}
    rows = _json(gpunet("provider", "jobs", "--test-account", str(P2), "--state", "SUBMITTED", "--json"))["jobs"]
    assert [r["job_id"] for r in rows] == [7]


# ---------------------------------------------------------------------------- job logs


def _steps(tl: dict) -> list[str]:
    return [s["event"] for s in tl["steps"]]


def test_job_logs__audited_job__draw_audit_verdict_settlement(story, gpunet):
    tl = _json(gpunet("job", "logs", "1", "--json"))
    assert _steps(tl) == ["created", "accepted", "submitted", "audit draw", "verdict", "finalized"]
    assert [s["time"] for s in tl["steps"]] == sorted(s["time"] for s in tl["steps"])
    draw = tl["steps"][3]["data"]
    assert draw["drawn"] is True and draw["audit_bps"] == 10_000
    assert (draw["round"], draw["state"], draw["revealed"], draw["required"]) == (
        story.jobs[1]["draw_round"], "ready", 1, 1,
    )  # fmt: skip
    assert f"beacon round {draw['round']}" in tl["steps"][3]["text"]
    acc = tl["steps"][1]["data"]["machine"]
    assert acc == {"machine_id": story.machine, "class_id": CPU, "class": "CPU", "gpu_count": 1, "vram_mb": 256}
    assert "re-executes it, no transaction needed" in tl["steps"][3]["text"]
    verdict = tl["steps"][4]
    assert verdict["data"]["valid"] is True and story.a[0].address in verdict["text"]
    fin = tl["steps"][5]["data"]
    assert fin["settled"]["minted"] == story.settled[0]["minted"] and fin["settled"]["jobs"] == 1
    assert tl["waiting"] == {"status": "FINALIZED", "until": None, "text": "ended: FINALIZED"}


def test_job_logs__finalized_job__text_in_order(story, gpunet):
    text = gpunet("job", "logs", "2").output
    low = text.lower()
    at = [low.index(w) for w in ("created", "accepted", "submitted", "not drawn for", "finalized:")]
    assert at == sorted(at), text
    assert text.rstrip().endswith("ended: FINALIZED")
    (fin,) = [s for s in _json(gpunet("job", "logs", "2", "--json"))["steps"] if s["event"] == "finalized"]
    minted = story.settled[1]["minted"]  # a $1 job at $0.50: 2 tokens escrowed, the fee kept out
    assert f"provider minted {minted / ONE_TOKEN:,.6f} tokens for $0.95" in fin["text"]


def test_job_logs__failed_and_expired(story, gpunet):
    tl = _json(gpunet("job", "logs", "3", "--json"))
    assert _steps(tl) == ["created", "accepted", "submitted", "audit draw", "disputed", "verdict", "failed"]
    assert tl["steps"][4]["data"]["challenger"] == story.a[U].address
    assert tl["steps"][5]["data"]["valid"] is False and "INVALID" in tl["steps"][5]["text"]
    tl = _json(gpunet("job", "logs", "4", "--json"))
    assert _steps(tl) == ["created", "accepted", "expired"]
    assert "no-show penalty" in tl["steps"][2]["text"]


def test_job_logs__waiting_lines(story, gpunet):
    j5, j6, j7 = story.jobs[5], story.jobs[6], story.jobs[7]
    w = _json(gpunet("job", "logs", "5", "--json"))["waiting"]
    assert w["status"] == "OPEN" and w["until"] == j5["accept_by"]
    assert "waiting for any provider of class 1 (CPU) to accept" in w["text"] and "gpunet job expire 5" in w["text"]
    text = gpunet("job", "logs", "5").output
    assert "now: waiting for any provider" in text and "(in " in text
    w = _json(gpunet("job", "logs", "6", "--json"))["waiting"]
    assert w["until"] == j6["complete_by"] and f"running it on machine {story.machine}, result due by" in w["text"]
    tl = _json(gpunet("job", "logs", "7", "--json"))
    assert tl["steps"][-1]["event"] == "audit draw" and tl["steps"][-1]["data"]["drawn"] is True
    assert tl["waiting"]["until"] == j7["challenge_end"] + story.h.market.params().audit_timeout
    assert tl["waiting"]["text"].startswith("drawn for audit: the oracle quorum re-executes it, verdict due by")


def test_job_logs__unknown_job__one_line_with_the_range(gpunet):
    res = gpunet("job", "logs", "99", code=1)
    assert res.output.strip().splitlines() == ["Error: job 99 does not exist (jobs 1..7)"]


# ---------------------------------------------------------------------------- earnings


def test_provider_earnings__totals_match_events(story, gpunet):
    e = _json(gpunet("provider", "earnings", "--test-account", str(P), "--json"))
    mine = [x for x in story.settled if x["provider"] == story.a[P].address]
    t = e["total"]
    assert t["job_income"] == sum(x["minted"] for x in mine) > 0
    assert t["job_income_usd"] == sum(x["usd_net"] for x in mine)
    assert t["emissions"] == story.claimed > 0
    slashed = {}
    for x in story.slashed:
        slashed[bytes(x["reason"])] = slashed.get(bytes(x["reason"]), 0) + x["amount"]
    assert t["slashes"] == {
        "INVALID_RESULT": slashed[keccak(text="INVALID_RESULT")],
        "NO_SHOW": slashed[keccak(text="NO_SHOW")],
    }
    assert t["slashed"] == sum(slashed.values())
    assert t["jobs"] == 2 and t["fees"] > 0
    assert t["net"] == t["job_income"] + t["emissions"] - t["slashed"]
    assert e["price"] == {"answer": ONE_USD // 2, "decimals": 8}
    assert t["emissions_usd"] == t["emissions"] // 2
    # Jobs settled in epoch 0, the claim landed in epoch 1.
    assert [(b["epoch"], b["job_income"] > 0, b["emissions"]) for b in e["epochs"]] == [
        (0, True, 0),
        (1, False, story.claimed),
    ]


def test_provider_earnings__last_epoch_and_text(story, gpunet):
    e = _json(gpunet("provider", "earnings", story.a[P].address, "--epochs", "1", "--json"))
    assert [b["epoch"] for b in e["epochs"]] == [1] and e["total"]["job_income"] == 0
    assert e["since"] == story.genesis + EPOCH
    text = gpunet("provider", "earnings", story.a[P].address).output
    assert "NO_SHOW" in text and "INVALID_RESULT" in text and "total" in text
    assert "$0.50 per token" in text
    assert max(len(line) for line in text.splitlines() if "│" in line or "─" in line) <= 100, text
    res = gpunet("provider", "earnings", story.a[P].address, "--epochs", "1", "--since", "5", code=2)
    assert "not both" in res.output
    nothing = gpunet("provider", "earnings", story.a[U].address).output
    assert "nothing earned" in nothing


# ---------------------------------------------------------------------------- provider claim


def test_provider_claim__for_another_pays_the_provider_what_settlement_minted(story):
    code, out, balance, accrued, settled = story.cli["claim_1"]
    assert code == 0, out
    c = json.loads(out)
    (fin,) = [x for x in story.h.market.JobFinalized.range(0, story.chain.blocks.height + 1) if x.job_id == 1]
    # The deployer signed; the provider was paid: job 1's escrow burned once, its pay minted at $0.50.
    assert c["provider"] == story.a[P].address and settled == [story.settled[0]]
    assert c["burned"] == settled[0]["burned"] == fin.burned > 0
    assert c["minted"] == settled[0]["minted"] == fin.burned - fin.fee == balance - story.cli["before_claim_1"]
    assert (c["price"], c["price_decimals"]) == (ONE_USD // 2, 8)
    assert c["collateral_released"] == story.jobs[1]["collateral"] > 0  # the claim frees job 1's collateral
    assert accrued == (0, 0, 0)


def test_provider_status_then_claim__shows_the_credit_and_claims_it_in_one_line(story):
    code, out, balance_before, credit, _ = story.cli["status"]
    assert code == 0, out
    (fin,) = [x for x in story.h.market.JobFinalized.range(0, story.chain.blocks.height + 1) if x.job_id == 2]
    claimable = json.loads(out)["claimable"]
    assert (claimable["escrow"], claimable["usd_net"], claimable["max_mint"]) == credit
    assert claimable["escrow"] == fin.burned and claimable["max_mint"] == fin.burned - fin.fee
    assert claimable["usd_net"] == fin.usd_value - fin.usd_value * PARAMS.fee_bps // MAX_BPS
    code, out, balance, accrued, settled = story.cli["claim_2"]
    assert code == 0, out
    (a,) = settled
    assert (a["burned"], a["usd_net"], a["cap"]) == credit and a["minted"] == balance - balance_before > 0
    (line,) = out.strip().splitlines()
    assert line.startswith(
        f"claimed for {story.a[P].address}: burned {fin.burned / ONE_TOKEN:,.6f} GPU of escrow, minted "
        f"{a['minted'] / ONE_TOKEN:,.6f} GPU at 0.5 USD per GPU, freed "
        f"{story.jobs[2]['collateral'] / ONE_TOKEN:,.6f} GPU of collateral; tx 0x"
    ), line
    assert accrued == (0, 0, 0)


def test_provider_claim__nothing_to_claim__one_line_exit_1(story, gpunet, monkeypatch):
    import offchain.cli.provider as provider_cli

    monkeypatch.setattr(provider_cli, "session", lambda chain: contextlib.nullcontext(story.h))
    for args in (["--test-account", str(P)], ["--for", story.a[P2].address, "--test-account", str(U)]):
        res = gpunet("provider", "claim", *args, "--yes", code=1)
        who = story.a[P].address if "--for" not in args else story.a[P2].address
        assert res.output.strip().splitlines() == [
            f"Error: nothing to claim for {who}: none of its jobs finalized since its last claim"
        ]
    status = _json(gpunet("provider", "status", "--test-account", str(P), "--json"))
    assert status["claimable"] == {"escrow": 0, "usd_net": 0, "max_mint": 0}


def test_provider_claim__bad_address__usage_error(gpunet):
    res = gpunet("provider", "claim", "--for", "0x1234", "--test-account", str(P), "--yes", code=2)
    assert "'0x1234' is not an address" in res.output
