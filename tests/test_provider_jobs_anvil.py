"""Real jobs end to end on anvil: provider agent processes running the job worker
(`gpunet provider serve --test-account N --state-dir DIR`), users submitting through the client
SDK and the `gpunet job ...` CLI.

- an honest agent runs one job of every workload kind; each result matches a local honest
  re-execution, the worker finalizes them itself once the challenge window is over and is paid;
- restart safety: an agent that dies right after its accept transaction (before recording it)
  resumes on the same state dir, completes and submits the job, and never accepts twice;
- a `--cheat wrong-output` agent's result differs from an honest re-execution (`job result
  --verify` exits 2) and the user disputes it (`gpunet job dispute`).

Prices are in USD: the provider offers $0.001 per compute unit (`gpunet provider offer`), the
token is worth $0.50 on-chain (a PriceFeed round signed by a one-operator quorum, test account
9), so a job escrows twice its USD value in tokens (`Settlement.quote`); before the first round
nothing can be funded and the client says why. Finalization credits the provider; the worker
then claims: the escrow is burned and Settlement mints the provider its pay (`Settled`).

Sampled audits are off (p = 0) and windows are at their 60 s minimum so a random draw never
blocks `finalize`; machines are made Active by the deployer (ATTESTER_ROLE on a local chain)
instead of by oracle processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import requests
import torch

from offchain import workloads
from offchain.chain import keys
from offchain.chain.anvil import running_anvil
from offchain.chain.client import DEPLOYMENT_ENV, Handles
from offchain.chain.deploy import deploy_all
from offchain.chain.jobs import ZERO_ADDRESS, job_from_chain
from offchain.chain.price import ONE_USD, post_price
from offchain.client import sdk
from offchain.client.sealed import user_keyring
from offchain.constants import MAX_BPS, ONE_TOKEN, JobStatus, MachineStatus
from offchain.devnet import GPUNET, REPO_ROOT, Devnet, free_ports
from offchain.params import MarketParams, OracleParams
from offchain.provider.worker import CRASH_ENV, CRASH_EXIT_CODE
from offchain.sealing import Keyring, is_sealed
from offchain.workloads.base import blob_hash, canonical_json
from offchain.workloads.torchscript_infer import declared_gflops

pytestmark = pytest.mark.anvil

CPU = 1
PRICE = 10**15  # $0.001 per compute unit (USD, 18 decimals)
PRICE_USD = "0.001"  # the same, as `gpunet provider offer` takes it
USD_PER_TOKEN = ONE_USD // 2  # $0.50 per token (PriceFeed, 8 decimals): a job escrows 2x its USD value
TOKENS_PER_USD = ONE_USD // USD_PER_TOKEN
ORACLE = 9  # test account of the one-operator price quorum
PARAMS = MarketParams(
    base_audit_bps=0,
    new_provider_audit_bps=0,
    bad_record_audit_bps=0,
    challenge_window=60,
    min_accept_window=60,
    min_complete_within=60,
)
AGENT_ARGS = ["--poll", "0.3"]

MATMUL = {"kind": "matmul_chain", "params": {"n": 64, "k": 3}, "seed": 11}
MLP = {
    "kind": "mlp_train",
    "params": {"in_dim": 8, "hidden": [16], "out_dim": 2, "samples": 64, "batch": 16, "steps": 10},
    "seed": 12,
}
TOPLOC = {
    "kind": "toploc_generate",
    "params": {"vocab": 64, "d_model": 32, "layers": 2, "heads": 2, "prompt_len": 4, "new_tokens": 8, "topk": 4},
    "seed": 13,
}


def _torchscript_files(tmp: Path) -> tuple[dict, Path, Path]:
    torch.manual_seed(5)
    model = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)))
    model_path, input_path = tmp / "model.pt", tmp / "input.pt"
    torch.jit.save(model, str(model_path))
    buf = io.BytesIO()
    torch.save(torch.randn(40, 16), buf)
    input_path.write_bytes(buf.getvalue())
    mb, xb = model_path.read_bytes(), input_path.read_bytes()
    spec = {
        "kind": "torchscript_infer",
        "params": {"gflops": declared_gflops(mb, xb, 16) * 1.01, "batch_size": 16},
        "seed": 0,
        "inputs": {"model": blob_hash(mb), "input": blob_hash(xb)},
    }
    return spec, model_path, input_path


@dataclass
class Net:
    tmp: Path
    h: Handles
    accounts: Any
    deployer: Any
    devnet: Devnet
    chain: Any

    def post_price(self, usd: int = USD_PER_TOKEN) -> None:
        """A PriceFeed round at `usd` (8 decimals) from the one-operator quorum."""
        op = self.accounts[ORACLE]
        post_price(self.h.price_feed, self.chain.chain_id, [op], usd, self.chain.blocks.head.timestamp, op)

    def provider(
        self, index: int, port: int, stake: int = 1_000 * ONE_TOKEN, offer_via_cli: bool = False
    ) -> tuple[Any, int]:
        """Account `index` staked, offering CPU at PRICE, with one Active CPU machine at `port`."""
        p = self.accounts[index]
        t, r = self.h.token, self.h.registry
        t.mint(p, 2 * stake, sender=self.deployer)
        t.approve(r, 2**256 - 1, sender=p)
        r.stake(stake, sender=p)
        mid = r.register(CPU, 1, 256, f"http://127.0.0.1:{port}", sender=p).decode_logs(r.MachineRegistered)[0]
        r.set_machine_status(mid.machine_id, MachineStatus.ACTIVE, sender=self.deployer)
        if offer_via_cli:  # `provider offer` refuses without an ACTIVE machine of the class
            out = _gpunet("provider", "offer", "CPU", PRICE_USD, "--test-account", str(index), "--yes")
            assert out.returncode == 0 and "$0.001 per compute unit" in out.stdout, out.stdout + out.stderr
        else:
            r.set_offer(CPU, PRICE, sender=p)
        assert r.offers(p, CPU) == PRICE
        return p, int(mid.machine_id)

    def user(self, index: int) -> Any:
        u = self.accounts[index]
        self.h.token.mint(u, 100 * ONE_TOKEN, sender=self.deployer)  # no approval: jobs are funded by permit
        return u

    def start_agent(self, name: str, index: int, port: int, *, cheat: str | None = None) -> str:
        url = self.devnet.start_agent(
            name,
            self.accounts[index].address,
            "CPU",
            port,
            cheat=cheat,
            test_account=index,
            state_dir=self.tmp / f"{name}-state",
            extra=AGENT_ARGS,
        )
        self.devnet.wait_http(name, url)
        return url

    def warp(self, seconds: int) -> None:
        """Moves anvil's clock forward and mines a block (it mines only on transactions)."""
        self.chain.provider.make_request("evm_increaseTime", [seconds])
        self.chain.mine()

    def wait_status(self, job_id: int, statuses: set[JobStatus], timeout: float = 60.0) -> JobStatus:
        deadline = time.monotonic() + timeout
        st = JobStatus.NONE
        while time.monotonic() < deadline:
            st = JobStatus(self.h.market.job_status(job_id))
            if st in statuses:
                return st
            time.sleep(0.3)
        logs = "\n".join(f"--- {n}\n{self.devnet.tail(n, 40)}" for n in list(self.devnet.procs))
        raise AssertionError(f"job {job_id} stuck in {st.name}, wanted {sorted(s.name for s in statuses)}\n{logs}")


@contextlib.contextmanager
def local_net(tmp_path: Path) -> Iterator[Net]:
    """anvil + a fresh deployment recorded under tmp_path (GPUNET_DEPLOYMENT points every
    process there, so the shared deployments/ record is never touched)."""
    from ape import accounts, chain, networks, project

    record = tmp_path / "deployment.json"
    old = os.environ.get(DEPLOYMENT_ENV)
    os.environ[DEPLOYMENT_ENV] = str(record)
    devnet = Devnet(tmp_path)
    try:
        with running_anvil(log_path=tmp_path / "anvil.log"), networks.parse_network_choice("ethereum:local:foundry"):
            a = accounts.test_accounts
            op = a[ORACLE]
            d = deploy_all(project, a[0], local=True, params=PARAMS, operators=[op.address], record_path=record,
                           chain_id=chain.chain_id)  # fmt: skip
            stake = OracleParams().min_operator_stake
            d.token.mint(op, stake, sender=a[0])
            d.token.approve(d.hub, stake, sender=op)
            d.hub.stake(stake, sender=op)
            h = d.handles(chain)
            # No oracle process runs here: the operator's encryption key is published for it, so
            # jobs can be sealed to it (the CLI seals by default); the CLI user's keys go in tmp.
            keys.publish(h, op, Keyring.create(op.address, tmp_path / "operator.keys.json"))
            os.environ["GPUNET_KEY_FILE"] = str(tmp_path / "cli-user.keys.json")
            yield Net(tmp_path, h, a, a[0], devnet, chain)
    finally:
        devnet.stop_all()
        os.environ.pop("GPUNET_KEY_FILE", None)
        if old is None:
            os.environ.pop(DEPLOYMENT_ENV, None)
        else:
            os.environ[DEPLOYMENT_ENV] = old


def _gpunet(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([GPUNET, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def _honest(spec: dict, blobs: dict | None = None) -> workloads.Output:
    return workloads.execute(spec, "cpu", blobs or {})


def test_honest_agent__every_kind__results_match_and_worker_finalizes_and_is_paid(tmp_path):
    ts_spec, model_path, input_path = _torchscript_files(tmp_path)
    ts_blobs = sdk.read_blob_files([model_path, input_path])
    (tmp_path / "ts_spec.json").write_text(json.dumps(ts_spec))
    with local_net(tmp_path) as net:
        port, dead_port = free_ports(2)
        provider, _ = net.provider(1, port, offer_via_cli=True)
        user = net.user(3)
        net.user(4)  # the CLI user (test account 4)
        net.start_agent("agent", 1, port)

        # No token/USD price on-chain yet: nothing can be funded, and the client says what to do.
        with pytest.raises(sdk.NoPrice, match="no fresh token/USD price on-chain"):
            sdk.submit(net.h, user, MATMUL, class_id=CPU)
        r = _gpunet("job", "submit", str(tmp_path / "ts_spec.json"), "--blob", str(model_path), "--blob",
                    str(input_path), "--test-account", "4", "--no-wait", "--yes")  # fmt: skip
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
        assert "no fresh token/USD price on-chain" in r.stderr and "gpunet oracle run --price-source" in r.stderr
        net.post_price()
        usd = PRICE * workloads.compute_units(MATMUL)
        assert net.h.settlement.quote(usd) == TOKENS_PER_USD * usd

        # Client errors say what to fix, before anything is paid.
        with pytest.raises(sdk.ClientError, match="more than --max-tokens"):
            sdk.submit(net.h, user, MATMUL, class_id=CPU, max_tokens=TOKENS_PER_USD * usd - 1)
        with pytest.raises(sdk.ClientError, match="no offer for class 10"):
            sdk.submit(net.h, user, MATMUL, class_id=10)
        with pytest.raises(sdk.ClientError, match="price above max"):
            sdk.submit(net.h, user, MATMUL, max_price=PRICE - 1)
        with pytest.raises(sdk.ClientError, match="spec invalid"):
            sdk.submit(net.h, user, {"kind": "matmul_chain", "params": {"n": 64}, "seed": 1})
        with pytest.raises(sdk.ClientError, match="not given"):
            sdk.submit(net.h, user, ts_spec, {})
        with pytest.raises(sdk.ClientError, match="provider unreachable"):
            sdk.upload(f"http://127.0.0.1:{dead_port}", {"00" * 32: b""})
        assert net.h.market.job_count() == 0

        # torchscript_infer through the CLI (input files by hash, funded by permit, waits for the result).
        cli = subprocess.Popen(
            [GPUNET, "job", "submit", str(tmp_path / "ts_spec.json"), "--blob", str(model_path), "--blob",
             str(input_path), "--test-account", "4", "--json", "--timeout", "60", "--max-price", PRICE_USD,
             "--max-slippage-bps", "200", "--yes"],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # The other kinds through the SDK, one targeted (best offer) and one open.
        # MATMUL sealed by the SDK (to the provider, the operator and the user), MLP in plaintext.
        ring = user_keyring(user.address, tmp_path / "user3.keys.json")
        subs = {"matmul_chain": sdk.submit(net.h, user, MATMUL, class_id=CPU, keyring=ring)}
        subs["mlp_train"] = sdk.submit(net.h, user, MLP, class_id=CPU)
        subs["toploc_generate"] = sdk.submit(net.h, user, TOPLOC, class_id=CPU, open_job=True, max_price=PRICE)
        assert subs["toploc_generate"].provider is None and subs["matmul_chain"].provider == provider.address
        stdout, stderr = cli.communicate(timeout=90)
        assert cli.returncode == 0, stdout + stderr
        cli_out = json.loads(stdout.strip().splitlines()[-1])
        assert cli_out["status"] == "SUBMITTED" and cli_out["provider"] == provider.address
        assert "offers for class CPU (1)" in stderr and "$0.001" in stderr  # the ranked table (USD), on stderr
        # USD value at the offer; tokens at $0.50; the slippage bound (2%) is what the permit allowed.
        assert cli_out["price"] == PRICE and cli_out["price_usd"] == "$0.001"
        assert cli_out["usd_value"] == cli_out["units"] * PRICE
        assert cli_out["payment"] == TOKENS_PER_USD * cli_out["usd_value"]
        assert cli_out["max_tokens"] == cli_out["payment"] * (MAX_BPS + 200) // MAX_BPS
        for s in subs.values():
            assert s.usd_value == s.units * PRICE and s.payment == TOKENS_PER_USD * s.usd_value
            assert s.max_tokens == s.payment * (MAX_BPS + sdk.DEFAULT_MAX_SLIPPAGE_BPS) // MAX_BPS
        ids = {k: s.job_id for k, s in subs.items()} | {"torchscript_infer": cli_out["job_id"]}
        # Every kind the package ships (its entry points); other tests may register extra kinds.
        shipped = [ep.name for ep in entry_points(group="gpunet.workloads")]
        assert sorted(ids) == sorted(shipped)

        specs = {"matmul_chain": MATMUL, "mlp_train": MLP, "toploc_generate": TOPLOC, "torchscript_infer": ts_spec}
        assert cli_out["sealed"] is True
        for kind, jid in ids.items():
            net.wait_status(jid, {JobStatus.SUBMITTED})
            if kind in ("matmul_chain", "torchscript_infer"):  # sealed: the store holds only ciphertext
                spec_hex = bytes(job_from_chain(net.h.market, jid)["spec_hash"]).hex()
                signed = sdk.request_signer(net.h, provider).headers(provider.address, "GET", spec_hex)
                stored = requests.get(f"http://127.0.0.1:{port}/blobs/{spec_hex}", timeout=5, headers=signed)
                assert stored.status_code == 200 and is_sealed(stored.content)
            with pytest.raises(sdk.ClientError, match="sign as the user"):
                sdk.fetch_result(net.h, jid)
            owner, owner_ring = (net.accounts[4], Keyring.load(tmp_path / "cli-user.keys.json")) if (
                kind == "torchscript_infer") else (user, ring)  # fmt: skip
            res = sdk.fetch_result(net.h, jid, tmp_path / f"out-{kind}", owner_ring, account=owner)
            reference = _honest(specs[kind], ts_blobs)
            assert res.output.kind == kind
            assert workloads.compare(res.output, reference), kind
            # output.bin is the output itself; a sealed job's on-chain hash is of its ciphertext.
            sealed = kind in ("matmul_chain", "torchscript_infer")
            plain_hash = hashlib.sha256(res.files["bin"].read_bytes()).hexdigest()
            assert plain_hash == (workloads.result_hash(res.output).hex() if sealed else res.result_hash)
            assert (plain_hash == res.result_hash) is not sealed
            assert json.loads(res.files["json"].read_text())["kind"] == kind
            assert res.uri == f"http://127.0.0.1:{port}/blobs/{res.result_hash}"

        # The CLI's result command checks the hash, writes the files and re-executes with --verify.
        r = _gpunet("job", "result", str(ids["torchscript_infer"]), "-o", str(tmp_path / "cli-out"), "--verify",
                    "--test-account", "4")  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert "verified against the chain" in r.stdout and "local re-execution matches" in r.stdout
        loaded = torch.load(tmp_path / "cli-out" / "output.pt", weights_only=False)
        assert loaded["kind"] == "torchscript_infer" and loaded["tensors"]["output"].shape == (40, 4)
        st = _gpunet("job", "status", str(ids["matmul_chain"]), "--json")
        assert json.loads(st.stdout)["status"] == "SUBMITTED", st.stderr

        # Jobs funded behind the client's back: one whose spec was never uploaded waits (and its
        # user cancels it); one that pays for more compute units than its spec has is refused;
        # an open job worth less in USD per unit than the provider's offer is left alone.
        m = net.h.market
        net.h.token.approve(m, 10 * TOKENS_PER_USD * PRICE, sender=user)
        missing = dict(MATMUL, seed=99)
        padded = dict(MATMUL, seed=98)
        with pytest.raises(sdk.ClientError, match="only to signed requests"):  # this agent needs a signer
            sdk.upload(f"http://127.0.0.1:{port}", {workloads.spec_hash(padded): canonical_json(padded)})
        sdk.upload(f"http://127.0.0.1:{port}", {workloads.spec_hash(padded): canonical_json(padded)},
                   signer=sdk.request_signer(net.h, user), provider=provider.address)  # fmt: skip
        created = {}
        for name, spec, units in (("missing", missing, 1), ("padded", padded, 2)):
            rc = m.create_job(provider, CPU, bytes.fromhex(workloads.spec_hash(spec)), units, PRICE, 600, 3600,
                              TOKENS_PER_USD * PRICE * units, sender=user)  # fmt: skip
            created[name] = rc.decode_logs(m.JobCreated)[0].job_id
        cheap = dict(MATMUL, seed=97)
        rc = m.create_job(ZERO_ADDRESS, CPU, bytes.fromhex(workloads.spec_hash(cheap)), 1, PRICE // 2, 600, 3600,
                          TOKENS_PER_USD * PRICE, sender=user)  # fmt: skip
        created["cheap"] = rc.decode_logs(m.JobCreated)[0].job_id
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(
            x in net.devnet.tail("agent", 200) for x in ("compute units mismatch", "below the offer")
        ):
            time.sleep(0.3)
        log = net.devnet.tail("agent", 200)
        assert "compute units mismatch: the spec is 1 units, the job pays for 2" in log
        assert f"spec blob {workloads.spec_hash(missing)} not uploaded yet" in log
        assert f"pays {PRICE // 2} USD-wei per unit, below the offer {PRICE}" in log
        assert {m.job_status(j) for j in created.values()} == {JobStatus.OPEN}
        for name in ("missing", "cheap"):
            sdk.cancel(net.h, user, created[name])
            assert m.job_status(created[name]) == JobStatus.CANCELLED

        # After the challenge window the worker finalizes its own jobs (no keeper), which only
        # credits it (JobMarket.accrued), then claims: JobMarket burns the credited escrow and
        # Settlement mints the pay.
        balance = net.h.token.balanceOf(provider)
        assert net.h.registry.locked(provider) > 0
        net.warp(PARAMS.challenge_window + 1)
        for jid in ids.values():
            net.wait_status(jid, {JobStatus.FINALIZED})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and int(m.accrued(provider)[0]) > 0:
            time.sleep(0.3)
        assert tuple(m.accrued(provider)) == (0, 0, 0), net.devnet.tail("agent", 40)
        height = net.chain.blocks.height + 1
        paid = [lg for lg in net.h.market.JobFinalized.range(0, height) if lg.job_id in ids.values()]
        assert len(paid) == 4 and all(lg.event_arguments["provider"] == provider.address for lg in paid)
        # Burn and mint: each job's whole escrow (2x its USD value at $0.50) is burned; Settlement
        # mints the provider the USD value minus the fee at the same price = the escrow minus the fee.
        assert all(lg.burned == TOKENS_PER_USD * lg.usd_value > 0 for lg in paid)
        assert all(lg.fee == lg.burned * PARAMS.fee_bps // MAX_BPS for lg in paid)
        settled = [lg for lg in net.h.settlement.Settled.range(0, height)
                   if lg.event_arguments["provider"] == provider.address]  # fmt: skip
        # Settled at the claims, never in a finalize transaction; every finalized escrow burned once.
        assert settled and not {str(lg.transaction_hash) for lg in settled} & {str(lg.transaction_hash) for lg in paid}
        assert sum(lg.burned for lg in settled) == sum(lg.burned for lg in paid)
        assert all(lg.price == USD_PER_TOKEN for lg in settled)
        minted = sum(lg.minted for lg in settled)
        assert minted == sum(lg.burned - lg.fee for lg in paid)
        assert net.h.token.balanceOf(provider) - balance == minted > 0
        assert net.h.registry.locked(provider) == 0
        # Each job is worth less than `min_reputation_usd` ($1): paid, but not counted toward
        # leaving probation (docs/SECURITY.md, finding 5).
        assert all(lg.usd_value < PARAMS.min_reputation_usd for lg in paid)
        assert net.h.registry.reputation(provider).completed == 0
        # The worker logs what each of its claims minted (the claim's Settled), summing to its
        # income, with the jobs it finalized since its previous claim: each job once. It writes
        # that line once its receipt poll sees the claim, which may be after this test did.
        deadline = time.monotonic() + 30
        while True:
            agent_log = net.devnet.tail("agent", 400)
            paid_logs = [json.loads(ln[ln.index("{") :]) for ln in agent_log.splitlines() if '"event": "paid"' in ln]
            if sum(e["minted"] for e in paid_logs) == minted or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert "finalized by us" in agent_log
        assert sum(e["minted"] for e in paid_logs) == minted
        assert len(paid_logs) == len(settled)
        assert sorted(j for e in paid_logs for j in e["job_ids"]) == sorted(ids.values())


def test_agent_restart_after_accept__resumes_and_completes_without_accepting_twice(tmp_path, monkeypatch):
    with local_net(tmp_path) as net:
        (port,) = free_ports(1)
        provider, machine_id = net.provider(2, port)
        user = net.user(3)
        net.post_price()
        monkeypatch.setenv(CRASH_ENV, "accepted")
        net.start_agent("agent", 2, port)
        monkeypatch.delenv(CRASH_ENV)
        sub = sdk.submit(net.h, user, MATMUL, class_id=CPU, provider=provider.address)
        proc = net.devnet.procs["agent"]
        assert proc.wait(timeout=60) == CRASH_EXIT_CODE, net.devnet.tail("agent")
        assert "crash_injected" in net.devnet.tail("agent")
        assert net.h.market.job_status(sub.job_id) == JobStatus.RUNNING  # accepted on-chain, never recorded

        url = net.start_agent("agent", 2, port)  # same state dir, no crash hook
        net.wait_status(sub.job_id, {JobStatus.SUBMITTED})
        accepted = list(net.h.market.JobAccepted.range(0, net.chain.blocks.height + 1))
        assert [(lg.job_id, lg.event_arguments["provider"], lg.machine_id) for lg in accepted] == [
            (sub.job_id, provider.address, machine_id)
        ]
        res = sdk.fetch_result(net.h, sub.job_id, account=user)
        assert res.result_hash == workloads.result_hash(_honest(MATMUL)).hex()
        # Blobs survive the restart: the spec the user uploaded is still served.
        signed = sdk.request_signer(net.h, user).headers(provider.address, "GET", sub.spec_hash)
        spec_blob = requests.get(f"{url}/blobs/{sub.spec_hash}", timeout=5, headers=signed).content
        assert spec_blob == canonical_json(MATMUL)

        net.warp(PARAMS.challenge_window + 1)
        net.wait_status(sub.job_id, {JobStatus.FINALIZED})
        # A second restart finds nothing left to do and stays healthy.
        net.devnet.stop("agent")
        net.start_agent("agent", 2, port)
        time.sleep(2)
        assert net.devnet.procs["agent"].poll() is None
        assert len(list(net.h.market.JobAccepted.range(0, net.chain.blocks.height + 1))) == 1


def test_wrong_output_agent__result_differs_from_honest_and_user_disputes(tmp_path):
    with local_net(tmp_path) as net:
        (port,) = free_ports(1)
        cheater, _ = net.provider(5, port)
        user = net.user(6)
        net.post_price()
        net.start_agent("cheater", 5, port, cheat="wrong-output")
        sub = sdk.submit(net.h, user, MLP, class_id=CPU, provider=cheater.address)
        net.wait_status(sub.job_id, {JobStatus.SUBMITTED})

        res = sdk.fetch_result(net.h, sub.job_id, account=user)  # the hash matches what it committed to...
        honest = _honest(MLP)
        assert res.result_hash != workloads.result_hash(honest).hex()  # ...but not an honest run
        assert not workloads.compare(res.output, honest)
        assert '"cheat": "wrong-output"' in net.devnet.tail("cheater", 200)

        r = _gpunet("job", "result", str(sub.job_id), "-o", str(tmp_path / "out"), "--verify", "--test-account", "6")
        assert r.returncode == 2 and "MISMATCH" in r.stdout, r.stdout + r.stderr
        bond = net.h.market.dispute_bond(sub.payment)
        before = net.h.token.balanceOf(user)
        r = _gpunet("job", "dispute", str(sub.job_id), "--test-account", "6", "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
        assert net.h.market.job_status(sub.job_id) == JobStatus.AUDIT
        assert net.h.market.disputes(sub.job_id).challenger == user.address
        assert before - net.h.token.balanceOf(user) == bond
        r = _gpunet("job", "dispute", str(sub.job_id), "--test-account", "6", "--yes")
        assert r.returncode != 0 and "only a Submitted result can be disputed" in r.stderr
