"""`gpunet` error reporting (issue 9) as a user meets it: the installed executable, run from a
directory outside the checkout, over a table of inputs a user can get wrong.

For every case: the expected exit status (2 for a usage error: a flag, argument, config file or
named file that is wrong, found before any node is asked; 1 for a runtime failure: the chain says
no), exactly one non-empty line on stderr that contains a phrase naming the problem, and no
traceback. Cases marked `max_s` must fail fast (before or instead of waiting on a node) and run
alone, so their wall time is not another case's CPU.

One anvil with one deployment serves the cases that need a chain (set up in-process with the
deployer's roles; see `net`): test accounts
- 1, 2: 10,000 tokens each, no stake;
- 3: a provider: staked, one ACTIVE CPU machine (1), offering CPU; job 1's pay credited, not claimed;
- 4: a user, owner of job 1 (FINALIZED), job 2 (OPEN, for provider 3) and job 3 (RUNNING on machine 1);
- 5: staked, one PENDING CPU machine (2);
- 6: staked, one ACTIVE T4 machine (3); the T4 class is then disabled by governance, so
  `provider offer T4` passes every client-side check and the contract reverts;
- 9: the one-operator price quorum.
Every other node a case names is a closed port; `provider register --endpoint {agent}/ADDRESS`
finds a stand-in agent's /health for that provider (`_fake_agents`).

Cost: about 120 CPU-seconds of `gpunet` processes (most import ape and connect), so about a
minute on two idle cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from offchain.chain import jobs as jobs_mod
from offchain.chain.anvil import free_ports, running_anvil
from offchain.chain.deploy import DEPLOYMENTS_DIR_ENV, connected_deployment_path, deploy_all
from offchain.chain.price import ONE_USD, post_price
from offchain.constants import ONE_TOKEN, JobStatus, MachineStatus
from offchain.params import MarketParams, OracleParams

pytestmark = pytest.mark.anvil

GPUNET = Path(sys.executable).with_name("gpunet")
CPU, T4 = 1, 2
PRICE = 10**15  # $0.001 per compute unit
PARAMS = MarketParams(base_audit_bps=0, new_provider_audit_bps=0, bad_record_audit_bps=0, challenge_window=60)
WORKERS = 4
SPEC = json.dumps({"kind": "matmul_chain", "params": {"n": 64, "k": 3}, "seed": 11})
ENDPOINT = "http://127.0.0.1:9650"


@dataclass(frozen=True)
class Case:
    """`args` and `needle` may name {rpc} (the chain), {dead} (a closed port), {shared} (files
    the fixture wrote) and {aN} (test account N's address). `files` are written into the case's
    own working directory; `chain` cases get GPUNET_RPC={rpc}, the others GPUNET_RPC={dead}."""

    id: str
    args: tuple[str, ...]
    code: int
    needle: str
    chain: bool = False
    files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    max_s: float | None = None


def C(id, args, code, needle, **kw) -> Case:  # noqa: N802 - reads as a table row
    return Case(id, tuple(args.split()) if isinstance(args, str) else tuple(args), code, needle, **kw)


# fmt: off
CASES = [
    # ------------------------------------------------------------ addresses, amounts, classes
    C("address/provider-status", "provider status 0x123", 2, "'0x123' is not an address (0x followed by 40 hex"),
    C("address/job-submit", "job submit spec.json --provider 0x123 --test-account 4", 2, "'0x123' is not an address",
      files={"spec.json": SPEC}),
    C("address/rewards-show", "rewards show --provider xyz", 2, "'xyz' is not an address"),
    C("address/provider-claim-for", "provider claim --for 0x123 --test-account 1 --yes", 2,
      "'0x123' is not an address"),
    C("amount/offer-negative", "provider offer CPU -0.5 --test-account 3", 2, "-0.5 must be zero or positive"),
    C("amount/offer-not-a-number", "provider offer CPU abc --test-account 3", 2, "'abc' is not a number (e.g. 12.5)"),
    C("amount/stake-zero", "provider stake 0 --test-account 1", 2, "0 must be positive"),
    C("class/offer", "provider offer FOO 0.1 --test-account 3", 2, "no class named 'FOO' (known: CPU, T4"),
    C("class/register", f"provider register XYZ --endpoint {ENDPOINT} --test-account 3", 2, "no class named 'XYZ'"),
    C("class/bench-claim", "bench --claim XYZ", 2, "no class named 'XYZ'"),
    C("endpoint/register-not-http", "provider register CPU --endpoint ftp://x --test-account 3", 2,
      "'ftp://x' is not an http(s) URL"),
    # ------------------------------------------------------------ network, node, deployment
    C("network/no-colon", "info --network nonsense", 2, "expected ECOSYSTEM:NETWORK[:PROVIDER]"),
    C("network/unknown-ecosystem", "info --network foo:bar:baz", 2, "No ecosystem named 'foo' (options: "),
    C("network/unknown-network", "info --network ethereum:nowhere", 2, "No network in 'ethereum' named 'nowhere' ("),
    C("node/unreachable", "info --rpc http://127.0.0.1:{dead}", 1,
      "no node answers at http://127.0.0.1:{dead} (refused or unreachable)", max_s=5),
    C("deployment/missing-file", "info --deployment /nonexistent.json", 2, "/nonexistent.json: no such file"),
    C("deployment/not-a-record", "info --deployment notrec.json", 2,
      "notrec.json is not a deployment record (no contracts/chain_id)", files={"notrec.json": '{"a": 1}'}),
    C("deployment/not-json", "info --deployment bad.json", 2, "bad.json is not a deployment record (bad JSON",
      files={"bad.json": "nope"}),
    C("deployment/none-for-this-node", "info", 1, "no deployment recorded at", chain=True,
      env={DEPLOYMENTS_DIR_ENV: "{shared}/empty"}),
    C("deployment/wrong-chain-id", "info --deployment {shared}/wrongchain.json", 1,
      "wrongchain.json is for chain 1 but the node is chain 31337", chain=True),
    # ------------------------------------------------------------ signers
    C("signer/missing", "provider stake 5", 2, "this command signs: pass --account ALIAS", max_s=5),
    C("signer/both", "provider stake 5 --account me --test-account 1", 2, "give either --account ALIAS or"),
    C("signer/unknown-alias", "provider stake 5 --account no-such-alias", 2,
      "no ape account 'no-such-alias': create one with `ape accounts generate no-such-alias`",
      env={"APE_DATA_FOLDER": "{shared}/ape-data"}),
    C("signer/test-account-public-network", "provider stake 5 --test-account 1 --network ethereum:sepolia", 2,
      "--test-account is for local networks only, not ethereum:sepolia: use --account ALIAS"),
    C("signer/test-account-42", "provider stake 5 --test-account 42", 2, "42 is not in the range 0<=x<=9"),
    C("range/serve-claim-every-negative", "provider serve --claim-every -1 --test-account 1 --state-dir s", 2,
      "Invalid value for '--claim-every': -1.0 is not in the range x>=0"),
    # ------------------------------------------------------------ config file, command line
    C("config/invalid-toml", "info", 2, "gpunet.toml: not valid TOML", files={"gpunet.toml": "network = \n"}),
    C("config/unknown-key", "info", 2, "gpunet.toml: unknown key 'colour'", files={"gpunet.toml": 'colour = "red"\n'}),
    C("config/unknown-table", "info", 2, "gpunet.toml: unknown table [nosuch]", files={"gpunet.toml": "[nosuch]\n"}),
    C("config/env-names-missing-file", "info", 2, "names {shared}/nope.toml, which does not exist",
      env={"GPUNET_CONFIG": "{shared}/nope.toml"}),
    C("cli/unknown-command", "frobnicate", 2, "No such command 'frobnicate'"),
    C("cli/unknown-option", "provider status --bogus", 2, "No such option: --bogus"),
    C("cli/provider-and-open", "job submit spec.json --provider {a3} --open --test-account 4", 2,
      "give either --provider ADDR or --open", files={"spec.json": SPEC}),
    # ------------------------------------------------------------ job specs (checked before the chain)
    C("spec/missing", "job submit nope.json --test-account 4", 2, "'nope.json' does not exist"),
    C("spec/not-json", "job submit bad.json --test-account 4", 2, "spec file bad.json is not JSON",
      files={"bad.json": "{nope"}),
    C("spec/not-an-object", "job submit list.json --test-account 4", 2, "spec invalid",
      files={"list.json": "[1, 2]"}),
    C("spec/invalid", "job submit bad-kind.json --test-account 4", 2, "spec invalid",
      files={"bad-kind.json": '{"kind": "no_such_kind", "params": {}, "seed": 1}'}),
    # ------------------------------------------------------------ chain state: stake, balance, machines
    C("balance/stake-more-than-held", "provider stake 1000000 --test-account 1 --yes", 1,
      "holds 10,000.000000 GPU, 990,000.000000 short of 1,000,000.000000", chain=True),
    C("confirm/stake-without-yes", "provider stake 10 --test-account 2", 2,
      "confirm with --yes (no terminal to ask on)", chain=True),
    C("confirm/register-without-yes", "provider register CPU --endpoint {agent}/{a5} --test-account 5", 2,
      "confirm with --yes (no terminal to ask on)", chain=True),
    C("stake/register-without-stake", "provider register CPU --endpoint {agent}/{a2} --test-account 2 --yes", 1,
      "has 0.000000 GPU staked; with this machine it needs 10.000000: `gpunet provider stake 10` first",
      chain=True),
    C("stake/offer-without-stake", "provider offer CPU 0.1 --test-account 2 --yes", 1,
      "has no stake: `gpunet provider stake AMOUNT` first", chain=True),
    C("stake/offer-without-active-machine", "provider offer CPU 0.1 --test-account 5 --yes", 1,
      "has no ACTIVE machine of class 1", chain=True),
    C("stake/unstake-more-than-free", "provider unstake 5000 --test-account 3 --yes", 1,
      "GPU of {a3}'s stake is free", chain=True),
    # a3's finalized job is not claimed yet: its collateral is still locked, and the line says how to free it.
    C("stake/unstake-before-claim", "provider unstake 1000 --test-account 3 --yes", 1,
      "locked as job collateral; `gpunet provider claim` releases its finalized jobs' share)", chain=True),
    C("confirm/claim-without-yes", "provider claim --test-account 3", 2,
      "confirm with --yes (no terminal to ask on)", chain=True),
    C("claim/nothing-credited", "provider claim --for {a5} --test-account 2 --yes", 1,
      "nothing to claim for {a5}: none of its jobs finalized since its last claim", chain=True),
    C("stake/withdraw-nothing-unbonding", "provider withdraw --test-account 2 --yes", 1,
      "has nothing unbonding: `gpunet provider unstake AMOUNT` first", chain=True),
    C("machine/exit-not-owned", "provider exit-machine 1 --test-account 2 --yes", 1,
      "machine 1 belongs to {a3}, not {a2}", chain=True),
    C("machine/exit-nonexistent", "provider exit-machine 99 --test-account 2 --yes", 1,
      "machine 99 does not exist (machines 1..3)", chain=True),
    C("machine/reattest-pending", "provider reattest 2 --test-account 5 --yes", 1,
      "machine 2 is PENDING: only an ACTIVE or JAILED machine", chain=True),
    C("revert/offer-disabled-class", "provider offer T4 0.1 --test-account 6 --yes", 1,
      "set_offer reverted: registry: unknown or disabled class", chain=True),
    # ------------------------------------------------------------ jobs
    C("job/show-nonexistent", "job show 999", 1, "job 999 does not exist (jobs 1..3)", chain=True),
    C("job/logs-nonexistent", "job logs 999", 1, "job 999 does not exist (jobs 1..3)", chain=True),
    C("job/cancel-nonexistent", "job cancel 999 --test-account 4", 1, "job 999 does not exist", chain=True),
    C("job/cancel-someone-elses", "job cancel 2 --test-account 2", 1, "job 2 belongs to {a4}, not {a2}", chain=True),
    C("job/cancel-finalized", "job cancel 1 --test-account 4", 1,
      "job 1 is FINALIZED: only an Open job (not accepted yet) can be cancelled", chain=True),
    C("job/dispute-open", "job dispute 2 --test-account 4 --yes", 1,
      "job 2 is OPEN: only a Submitted result can be disputed", chain=True),
    C("job/expire-not-due", "job expire 3 --test-account 2", 1, "job 3: its completion deadline ends at", chain=True),
    C("job/expire-finalized", "job expire 1 --test-account 2", 1,
      "job 1 is FINALIZED: only an Open job past its acceptance window or a Running job", chain=True),
    C("job/submit-no-offer", "job submit spec.json --class T4 --test-account 4 --yes --no-wait", 1,
      "no offer for class 2", chain=True, files={"spec.json": SPEC}),
    # ------------------------------------------------------------ encryption keys
    C("keys/rotate-asks-first", "keys rotate --key-file new.json --test-account 2", 2,
      "publish its key in KeyDirectory as {a2}: confirm with --yes", chain=True),
    C("keys/rotate-someone-elses-file", "keys rotate --key-file k.json --test-account 2 --yes", 2,
      "key file k.json belongs to 0x0000000000000000000000000000000000000001, not the signer {a2}", chain=True,
      files={"k.json": json.dumps({"address": "0x" + "00" * 19 + "01", "current": 1, "keys": {"1": "11" * 32}})}),
]
# fmt: on


@dataclass
class Net:
    root: Path
    rpc: str
    dead: str
    agent: str
    addresses: dict[int, str]

    def fill(self, text: str) -> str:
        values = {"rpc": self.rpc, "dead": self.dead.rsplit(":", 1)[1], "shared": str(self.root / "shared"),
                  "agent": self.agent}  # fmt: skip
        values.update({f"a{i}": a for i, a in self.addresses.items()})
        return text.format(**values)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """anvil + a deployment recorded for it under a temporary deployments dir, and the state
    the cases need (see the module docstring); ape is disconnected from it before the cases run."""
    from ape import accounts, chain, networks, project

    root = tmp_path_factory.mktemp("cli-errors")
    shared = root / "shared"
    for d in (shared / "empty", shared / "ape-data", root / "deployments", root / "xdg-config", root / "xdg-cache"):
        d.mkdir(parents=True)
    old_dir = os.environ.get(DEPLOYMENTS_DIR_ENV)
    os.environ[DEPLOYMENTS_DIR_ENV] = str(root / "deployments")
    try:
        with contextlib.ExitStack() as stack:
            rpc = stack.enter_context(running_anvil(log_path=root / "anvil.log"))
            with networks.parse_network_choice("ethereum:local:foundry"):
                a = accounts.test_accounts
                record = connected_deployment_path("ethereum", "local")
                t0 = time.monotonic()
                _setup(project, chain, a, record)
                (root / "setup_s").write_text(f"{time.monotonic() - t0:.1f}")
            (shared / "wrongchain.json").write_text(json.dumps({**json.loads(record.read_text()), "chain_id": 1}))
            agent = stack.enter_context(_fake_agents())
            yield Net(root, rpc, f"http://127.0.0.1:{free_ports(1)[0]}", agent, {i: a[i].address for i in range(10)})
    finally:
        if old_dir is None:
            os.environ.pop(DEPLOYMENTS_DIR_ENV, None)
        else:
            os.environ[DEPLOYMENTS_DIR_ENV] = old_dir


@contextlib.contextmanager
def _fake_agents():
    """An HTTP server whose GET /<address>/health answers like a CPU agent of that provider, so
    that `provider register --endpoint {agent}/<address>` finds its agent up."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            addr, _, rest = self.path.strip("/").partition("/")
            body = json.dumps({"ok": True, "provider": addr, "claimed_class": CPU}).encode()
            self.send_response(200 if rest == "health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _setup(project, chain, a, record: Path) -> None:
    admin, op = a[0], a[9]
    d = deploy_all(project, admin, local=True, params=PARAMS, operators=[op.address], record_path=record,
                   chain_id=chain.chain_id)  # fmt: skip
    t, r, m = d.token, d.registry, d.market
    stake = OracleParams().min_operator_stake
    t.mint(op, stake, sender=admin)
    t.approve(d.hub, stake, sender=op)
    d.hub.stake(stake, sender=op)
    for i in range(1, 9):
        t.mint(a[i], 10_000 * ONE_TOKEN, sender=admin)

    def machine(i: int, class_id: int, active: bool) -> int:
        if not int(r.stakes(a[i]).staked):
            t.approve(r, 2**256 - 1, sender=a[i])
            r.stake(1_000 * ONE_TOKEN, sender=a[i])
        tx = r.register(class_id, 1, 256, f"http://127.0.0.1:9/{i}", sender=a[i])
        mid = int(tx.decode_logs(r.MachineRegistered)[0].machine_id)
        if active:
            r.set_machine_status(mid, int(MachineStatus.ACTIVE), sender=admin)
        return mid

    assert machine(3, CPU, active=True) == 1
    r.set_offer(CPU, PRICE, sender=a[3])
    assert machine(5, CPU, active=False) == 2
    assert machine(6, T4, active=True) == 3
    gc = r.gpu_classes(T4)
    r.set_gpu_class(T4, gc.name, gc.min_stake_per_gpu, False, sender=admin)

    post_price(d.price_feed, chain.chain_id, [op], ONE_USD, chain.blocks.head.timestamp, op)
    user, jobs = a[4], {}
    t.approve(m, 2**256 - 1, sender=user)

    def track(receipt) -> None:
        for job_id, job in jobs_mod.jobs_from_receipt(m, receipt):
            jobs[int(job_id)] = job
        jobs_mod.update_from_receipt(m, jobs, receipt)

    def create() -> int:
        receipt = m.create_job(a[3], CPU, b"\x11" * 32, 1_000, PRICE, 600, 3600, 2**256 - 1, sender=user)
        track(receipt)
        return int(receipt.decode_logs(m.JobCreated)[0].job_id)

    def accept(job_id: int) -> None:
        track(m.accept(job_id, jobs_mod.as_tuple(jobs[job_id]), 1, sender=a[3]))

    finalized = create()
    accept(finalized)
    track(m.submit_result(finalized, jobs_mod.as_tuple(jobs[finalized]), b"\x22" * 32, "http://p/r", sender=a[3]))
    chain.provider.make_request("evm_increaseTime", [PARAMS.challenge_window + 1])
    chain.mine()
    track(m.finalize(finalized, jobs_mod.as_tuple(jobs[finalized]), sender=a[3]))
    open_, running = create(), create()
    accept(running)
    states = [JobStatus(m.job_status(j)) for j in (finalized, open_, running)]
    assert states == [JobStatus.FINALIZED, JobStatus.OPEN, JobStatus.RUNNING]


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    wall_s: float


def _run(net: Net, case: Case) -> Result:
    cwd = net.root / "cases" / case.id.replace("/", "-")
    cwd.mkdir(parents=True)
    for name, text in case.files.items():
        (cwd / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUNET_", "APE_FOUNDRY"))}
    env.update(
        GPUNET_RPC=net.rpc if case.chain else net.dead,
        GPUNET_DEPLOYMENTS_DIR=str(net.root / "deployments"),
        XDG_CONFIG_HOME=str(net.root / "xdg-config"),  # no user config file
        XDG_CACHE_HOME=str(net.root / "xdg-cache"),  # no saved `gpunet bench` profile
        COLUMNS="120",
    )
    env.update({k: net.fill(v) for k, v in case.env.items()})
    t0 = time.monotonic()
    p = subprocess.run([str(GPUNET), *(net.fill(x) for x in case.args)], cwd=cwd, env=env, capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
    return Result(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


@pytest.fixture(scope="module")
def results(net) -> dict[str, Result]:
    """Every case's result: the timed ones alone, then the rest WORKERS at a time."""
    t0, cpu0 = time.monotonic(), _children_cpu()
    timed = [c for c in CASES if c.max_s]
    out = {c.id: _run(net, c) for c in timed}
    with ThreadPoolExecutor(WORKERS) as pool:
        rest = [c for c in CASES if not c.max_s]
        out.update(zip((c.id for c in rest), pool.map(lambda c: _run(net, c), rest), strict=True))
    summary = {"wall_s": time.monotonic() - t0, "cpu_s": _children_cpu() - cpu0}
    (net.root / "results.json").write_text(json.dumps({"all": summary, **{k: vars(v) for k, v in out.items()}}))
    return out


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def test_cases_are_many_and_distinct():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_error(case: Case, net: Net, results: dict[str, Result]):
    r = results[case.id]
    shown = f"exit {r.rc} in {r.wall_s:.1f} s\n--- stderr\n{r.stderr}--- stdout\n{r.stdout}"
    assert "Traceback" not in r.stderr + r.stdout, shown
    assert r.rc == case.code, shown
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), shown
    assert net.fill(case.needle) in lines[0], shown
    if case.max_s:
        assert r.wall_s < case.max_s, shown
