"""Epoch emissions end to end: anvil, 3 real `gpunet oracle run` processes (quorum 2 of 3).

Deployed with a 240 s Emissions epoch; the oracles run with `--emissions-epochs` (uptime epochs =
Emissions' epochs) and probe every cycle. The test drives jobs itself (the deployer is the
attester, audits are off): two providers with Active machines finish jobs that finalize in
epoch 0, the oracles probe the machines, then chain time jumps past the epoch's end. The
oracles must post epoch 0's uptime, finalize the epoch (its leader), build the rewards from the
chain independently, agree on one root (2 of 3 signatures) and post it. A provider then claims
through `gpunet rewards claim` with a proof fetched from an operator, and the amount minted
equals the Python mirror (offchain/economics/rewards.py) over records the test computes itself.

Jobs are priced in USD (offers per compute unit) and funded at a $1.00 token price the
operators post (a PriceFeed round they all sign) before the jobs: their escrow, counted by
JobMarket at finalization (JobMarket.total_burned, burned later at the providers' claims), is
the epoch's `burned`, the taper's input.

The deployment record lives in tmp_path (GPUNET_DEPLOYMENT), never in deployments/.
"""

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from offchain.chain.anvil import running_anvil
from offchain.chain.client import DEPLOYMENT_ENV
from offchain.chain.deploy import deploy_all
from offchain.chain.jobs import as_tuple, jobs_from_receipt, update_from_receipt
from offchain.chain.price import ONE_USD, post_price
from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus, MachineStatus
from offchain.devnet import GPUNET, REPO_ROOT, Devnet, stake_operators
from offchain.economics import rewards as E
from offchain.params import EmissionsParams, MarketParams

pytestmark = pytest.mark.anvil

OPERATOR_ACCOUNTS = (7, 8, 9)
EPOCH = 240
ORACLE_ARGS = ["--poll", "0.5", "--leader-timeout", "5", "--emissions-epochs", "--probes-per-epoch", str(4 * EPOCH),
               "--rewards-delay", "3"]  # fmt: skip
PRICE = 10**15  # $0.001 per compute unit (USD, 18 decimals); 0.001 token at $1.00
CPU, H100 = 1, 10
PARAMS = MarketParams(base_audit_bps=0, new_provider_audit_bps=0, bad_record_audit_bps=0, challenge_window=60)
EMISSIONS = EmissionsParams(epoch_seconds=EPOCH)


class HealthServer:
    """GET /health -> {"ok": true}: the machines' endpoints for the uptime probes."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_GET(self):
                body = b'{"ok": true}'
                self.send_response(200 if self.path == "/health" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _gpunet(*args: str) -> dict:
    out = subprocess.run([GPUNET, *args, "--json"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_rewards__oracles_finalize_post_root_and_provider_claims(tmp_path, monkeypatch):
    from ape import accounts, chain, networks, project

    monkeypatch.setenv(DEPLOYMENT_ENV, str(tmp_path / "deployment.json"))
    devnet = Devnet(tmp_path)
    health = HealthServer()
    t0 = time.monotonic()
    try:
        with running_anvil(log_path=tmp_path / "anvil.log"), networks.parse_network_choice("ethereum:local:foundry"):
            try:
                _run(tmp_path, devnet, health, accounts, chain, project)
            finally:
                devnet.stop_all()  # before anvil goes away
    finally:
        devnet.stop_all()
        health.close()
        print(f"\nrewards anvil test took {time.monotonic() - t0:.1f} s")


def _run(tmp_path, devnet, health, accounts, chain, project):
    a = accounts.test_accounts
    deployer, user, claimer = a[0], a[3], a[5]
    providers = (a[1], a[2])
    ops = [a[i] for i in OPERATOR_ACCOUNTS]
    d = deploy_all(project, deployer, local=True, params=PARAMS, operators=[o.address for o in ops], threshold=2,
                   emissions_params=EMISSIONS, record_path=tmp_path / "deployment.json",
                   chain_id=chain.chain_id)  # fmt: skip
    token, registry, market, hub, em = d.token, d.registry, d.market, d.hub, d.emissions
    genesis = int(em.GENESIS())
    end0 = genesis + EPOCH
    stake_operators(token, hub, deployer, ops, 1_000 * ONE_TOKEN, mint=2_000 * ONE_TOKEN)
    urls = devnet.start_oracles(OPERATOR_ACCOUNTS, [o.address for o in ops], tmp_path, ORACLE_ARGS)

    # Providers: a CPU machine and a 2-GPU H100 machine, Active (the deployer attests), offering.
    machine, classes = {}, {providers[0].address: (CPU, 1), providers[1].address: (H100, 2)}
    for p in providers:
        cid, gpus = classes[p.address]
        token.mint(p, 2_000 * ONE_TOKEN, sender=deployer)
        token.approve(registry, 2**256 - 1, sender=p)
        registry.stake(1_000 * ONE_TOKEN, sender=p)
        tx = registry.register(cid, gpus, 1024, health.url, sender=p)
        machine[p.address] = tx.decode_logs(registry.MachineRegistered)[0].machine_id
        registry.set_machine_status(machine[p.address], int(MachineStatus.ACTIVE), sender=deployer)
        registry.set_offer(cid, PRICE, sender=p)
    token.mint(user, 1_000 * ONE_TOKEN, sender=deployer)
    token.approve(market, 2**256 - 1, sender=user)
    post_price(d.price_feed, chain.chain_id, ops, ONE_USD, chain.blocks.head.timestamp, deployer)

    # Jobs: accepted and submitted now, finalized after the 60 s challenge window, all in epoch 0.
    jobs: dict[int, dict] = {}
    for p, units in ((providers[0], 1_000), (providers[0], 3_000), (providers[1], 2_000)):
        cid, _ = classes[p.address]
        ((job_id, job),) = jobs_from_receipt(market, market.create_job(p, cid, b"\x11" * 32, units, PRICE, 600, 600,
                                                                       PRICE * units, sender=user))  # fmt: skip
        assert job["payment"] == job["usd_value"] == PRICE * units  # $1.00 per token
        jobs[job_id] = job
        update_from_receipt(market, jobs, market.accept(job_id, as_tuple(job), machine[p.address], sender=p))
        update_from_receipt(market, jobs, market.submit_result(job_id, as_tuple(jobs[job_id]), b"\x22" * 32,
                                                               "http://p/r", sender=p))  # fmt: skip
    chain.provider.make_request("evm_increaseTime", [PARAMS.challenge_window + 1])
    chain.provider.make_request("evm_mine", [])
    fees: dict[str, int] = {}
    for job_id in jobs:
        tx = market.finalize(job_id, as_tuple(jobs[job_id]), sender=user)
        fin = tx.decode_logs(market.JobFinalized)[0].event_arguments  # (`.provider` is ape's provider)
        fees[fin["provider"]] = fees.get(fin["provider"], 0) + int(fin["fee"])
        assert int(fin["fee"]) == jobs[job_id]["payment"] * PARAMS.fee_bps // MAX_BPS
    assert chain.blocks.head.timestamp < end0 - 60, "setup too slow: the jobs must finalize in epoch 0"

    # The oracles probe every Active machine each cycle during epoch 0.
    for i, o in enumerate(ops):
        devnet.wait_http(f"oracle-{i}", urls[o.address])
    time.sleep(5)
    for o in ops:
        probes = requests.get(urls[o.address] + "/metrics", timeout=5).text
        assert "gpunet_oracle_cycles_total" in probes

    # Epoch 0 ends (chain time); the quorum posts uptime, finalizes and posts the rewards root.
    chain.provider.make_request("evm_increaseTime", [end0 + 2 - chain.blocks.head.timestamp])
    chain.provider.make_request("evm_mine", [])
    t_end = time.monotonic()

    # Chain time is now ahead of the wall clock, so the oracles' clock only moves with blocks:
    # mine one per poll, as a live chain would.
    def root_posted() -> bool:
        chain.provider.make_request("evm_mine", [])
        return bytes(em.epochs(0).root) != b"\x00" * 32

    devnet.wait_for(root_posted, 60, "the epoch 0 rewards root")
    rewards_s = time.monotonic() - t_end
    height = chain.blocks.height + 1
    (fin_log,) = list(em.EpochFinalized.range(0, height))
    (posted,) = list(em.RewardsPosted.range(0, height))
    assert fin_log.epoch == 0 and fin_log.finalizer in {o.address for o in ops}
    assert posted.signers >= 2

    # The mirror, from what the test knows: fees of its jobs, uptime on-chain, class weights.
    machines = []
    for p in providers:
        cid, gpus = classes[p.address]
        uptime = int(hub.uptime_bps(0, machine[p.address]))
        assert uptime >= EMISSIONS.min_uptime_bps, f"machine {machine[p.address]} uptime {uptime}"
        weight = int(registry.gpu_classes(cid).min_stake_per_gpu) * gpus // ONE_TOKEN
        machines.append(E.MachineRecord(p.address, machine[p.address], True, uptime, weight,
                                        int(registry.machine_requirement(machine[p.address]))))  # fmt: skip
    job_recs = [E.JobRecord(p, 0, int(JobStatus.FINALIZED), 0, f) for p, f in fees.items()]
    stakes = {p.address: int(registry.staked(p)) for p in providers}
    expected = E.epoch_rewards(0, job_recs, machines, stakes, EMISSIONS)
    ep = em.epochs(0)
    assert bytes(ep.root) == expected.root
    assert (ep.total_work, ep.total_availability) == (expected.total_work, expected.total_availability)
    # The taper's input is the escrow of the jobs finalized in epoch 0 (fees included), counted
    # by JobMarket at finalization: nobody has claimed, so Settlement has burned nothing yet.
    assert ep.burned == sum(j["payment"] for j in jobs.values()) == d.market.total_burned() > 0
    assert d.settlement.total_burned() == 0
    assert ep.budget == E.epoch_budgets(EMISSIONS, [int(ep.burned)])[0]
    work_pool, avail_pool = E.split(int(ep.budget), expected.total_work, expected.total_availability, EMISSIONS)
    assert (ep.work_pool, ep.availability_pool) == (work_pool, avail_pool)

    # Every operator serves the posted tree.
    for o in ops:
        rec = requests.get(f"{urls[o.address]}/rewards/0", timeout=10).json()
        assert rec["posted"] is True and rec["root"] == "0x" + expected.root.hex(), rec

    # A provider's claim, sent by someone else through the CLI, with a proof from an operator.
    p = providers[1]
    w, av = expected.leaves[p.address]
    want = E.claim_amount(work_pool, avail_pool, expected.total_work, expected.total_availability, w, av)
    before = token.balanceOf(p)
    out = _gpunet("rewards", "claim", "--epoch", "0", "--provider", p.address, "--oracle", urls[ops[2].address],
                  "--test-account", "5")  # fmt: skip
    assert out["amount"] == out["expected"] == want > 0
    assert token.balanceOf(p) - before == want
    assert token.totalSupply() == token.total_minted() - token.total_burned()
    shown = _gpunet("rewards", "show", "--epoch", "0", "--provider", p.address)
    assert shown["root_posted"] is True and shown["provider_claimed"] is True and shown["claimed"] == want
    table = subprocess.run([GPUNET, "rewards", "show"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=90)
    assert table.returncode == 0 and "0x" + expected.root.hex()[:16] in table.stdout, table.stdout  # rich may cut

    gas = {
        "finalize_epoch": chain.get_receipt(fin_log.transaction_hash).gas_used,
        "submit_rewards": chain.get_receipt(posted.transaction_hash).gas_used,
        "claim": out["gas"],
    }
    metrics = requests.get(urls[ops[0].address] + "/metrics", timeout=5).text
    assert "gpunet_oracle_rewards_epoch 0.0" in metrics
    print(f"\nrewards: root posted {rewards_s:.1f} s after the epoch ended; gas {gas}; claimer {claimer.address}")
