"""Hardware verification end to end: anvil, 3 oracle operator processes (M = 2), provider agents,
the demo's hardware phase -- run while every core is kept busy by another process (`busy_cpus`,
from the quorum's start until the three machines are attested or jailed):

- a single operator cannot activate a machine alone (its peers are down: no quorum);
- an honest CPU provider claiming the CPU class becomes Active (attested, with expiry);
- a CPU provider claiming an H100 is jailed and slashed;
- a provider returning wrong products is jailed and slashed.
"""

import time

import pytest
import requests

from offchain.chain.anvil import running_anvil
from offchain.chain.client import DEPLOYMENT_ENV
from offchain.chain.deploy import deploy_all
from offchain.constants import ONE_TOKEN, MachineStatus
from offchain.devnet import Devnet, free_ports

pytestmark = pytest.mark.anvil

OPERATOR_ACCOUNTS = (7, 8, 9)
ORACLE_ARGS = [
    "--leader-timeout",
    "15",
    "--confirm-delay",
    "1",
    "--poll",
    "0.5",
    "--network-allowance",
    "0.5",
    "--memory-fraction",
    "0.5",
    "--ttl",
    "3600",
    "--epoch-seconds",
    "6",
]


def _wait_status(registry, machine_id, statuses, timeout, devnet):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = registry.machine_status(machine_id)
        if status in statuses:
            return status
        time.sleep(1)
    logs = "\n".join(f"--- {n}\n{devnet.tail(n)}" for n in list(devnet.procs))
    raise AssertionError(f"machine {machine_id} stuck in {MachineStatus(status).name}\n{logs}")


def test_hardware_attestation__quorum_of_real_processes__on_a_busy_machine(tmp_path, busy_cpus, monkeypatch):
    from ape import accounts, chain, networks, project

    # The record lives in tmp_path: the child processes find it through GPUNET_DEPLOYMENT.
    record = tmp_path / "deployment.json"
    monkeypatch.setenv(DEPLOYMENT_ENV, str(record))
    devnet = Devnet(tmp_path)
    try:
        with running_anvil(log_path=tmp_path / "anvil.log"), networks.parse_network_choice("ethereum:local:foundry"):
            a = accounts.test_accounts
            deployer = a[0]
            ops = [a[i] for i in OPERATOR_ACCOUNTS]
            d = deploy_all(
                project,
                deployer,
                local=True,
                operators=[o.address for o in ops],
                threshold=2,
                record_path=record,
                chain_id=chain.chain_id,
            )
            token, registry, hub = d.token, d.registry, d.hub
            for o in ops:
                token.mint(o, 2_000 * ONE_TOKEN, sender=deployer)
                token.approve(hub, 2**256 - 1, sender=o)
                hub.stake(1_000 * ONE_TOKEN, sender=o)
            honest, liar, wrong = a[1], a[2], a[3]
            for p in (honest, liar, wrong):
                token.mint(p, 5_000 * ONE_TOKEN, sender=deployer)
                token.approve(registry, 2**256 - 1, sender=p)
                registry.stake(1_000 * ONE_TOKEN, sender=p)

            ports = free_ports(6)
            urls = {o.address: f"http://127.0.0.1:{port}" for o, port in zip(ops, ports[:3], strict=True)}
            honest_url = devnet.start_agent("agent-honest", honest.address, "CPU", ports[3])
            liar_url = devnet.start_agent("agent-liar", liar.address, "H100 SXM5", ports[4])
            wrong_url = devnet.start_agent("agent-wrong", wrong.address, "CPU", ports[5], cheat="wrong-challenge")

            def start_oracle(i):
                o = ops[i]
                peers = {addr: url for addr, url in urls.items() if addr != o.address}
                name = f"oracle-{i}"
                devnet.start_oracle(
                    name, OPERATOR_ACCOUNTS[i], ports[i], peers, tmp_path / f"{name}.sqlite", ORACLE_ARGS
                )
                return name

            first = start_oracle(0)
            for name, url in (
                ("agent-honest", honest_url),
                ("agent-liar", liar_url),
                ("agent-wrong", wrong_url),
                (first, urls[ops[0].address]),
            ):
                devnet.wait_http(name, url)

            tx = registry.register(1, 1, 256, honest_url, sender=honest)
            honest_id = tx.decode_logs(registry.MachineRegistered)[0].machine_id
            # Alone, the first operator leads (once its peers' leader slots time out), challenges
            # the machine, signs nothing without a co-signer and cannot reach the quorum.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and '"no_quorum_yet"' not in devnet.tail(first, 200):
                time.sleep(1)
            assert '"no_quorum_yet"' in devnet.tail(first, 200), devnet.tail(first)
            assert '"role": "leader", "machine_id": 1' in devnet.tail(first, 200)
            assert registry.machine_status(honest_id) == MachineStatus.PENDING
            assert hub.attestation_nonce(honest_id) == 0

            busy_cpus.start()  # every challenge that decides a machine runs on a machine kept busy
            for i in (1, 2):
                name = start_oracle(i)
                devnet.wait_http(name, urls[ops[i].address])
            liar_id = (
                registry.register(10, 1, 81_920, liar_url, sender=liar)
                .decode_logs(registry.MachineRegistered)[0]
                .machine_id
            )
            wrong_id = (
                registry.register(1, 1, 256, wrong_url, sender=wrong)
                .decode_logs(registry.MachineRegistered)[0]
                .machine_id
            )
            liar_stake = registry.slashable(liar)
            wrong_stake = registry.slashable(wrong)
            supply = token.totalSupply()

            assert (
                _wait_status(registry, honest_id, {MachineStatus.ACTIVE, MachineStatus.JAILED}, 150, devnet)
                == MachineStatus.ACTIVE
            )
            assert (
                _wait_status(registry, liar_id, {MachineStatus.ACTIVE, MachineStatus.JAILED}, 150, devnet)
                == MachineStatus.JAILED
            )
            assert (
                _wait_status(registry, wrong_id, {MachineStatus.ACTIVE, MachineStatus.JAILED}, 150, devnet)
                == MachineStatus.JAILED
            )

            now = chain.blocks.head.timestamp
            assert now < registry.attested_until(honest_id) <= now + 3600
            assert registry.slashable(honest) == 1_000 * ONE_TOKEN
            assert registry.slashable(liar) == liar_stake - liar_stake // 10
            assert registry.slashable(wrong) == wrong_stake - wrong_stake // 10
            assert token.totalSupply() == supply - liar_stake // 10 - wrong_stake // 10
            accepted = list(hub.AttestationAccepted.range(0, chain.blocks.height + 1))
            by_machine = {log.machine_id: log for log in accepted}
            assert by_machine[honest_id].outcome == 0
            # The honest machine was never failed, and a FAIL was proposed only after the leader's
            # confirming challenge (decision rule: docs/PROTOCOL.md "Hardware verification").
            assert all(log.outcome == 0 for log in accepted if log.machine_id == honest_id)
            logs = "\n".join(devnet.tail(n, 400) for n in list(devnet.procs) if n.startswith("oracle"))
            assert '"role": "leader-confirm"' in logs
            assert by_machine[liar_id].outcome == 1
            assert by_machine[wrong_id].outcome == 1
            assert all(log.signers >= 2 for log in accepted)
            busy_cpus.stop()  # the hardware phase is over; the rest need no load

            # Uptime: the operators probe Active machines at random moments; after an epoch ends,
            # its leader reports the counts with a quorum's signatures.
            deadline = time.monotonic() + 90
            uptime = []
            while time.monotonic() < deadline and not uptime:
                uptime = [
                    lg for lg in hub.UptimeRecorded.range(0, chain.blocks.height + 1) if lg.machine_id == honest_id
                ]
                time.sleep(1)
            assert uptime, "no uptime report:\n" + "\n".join(devnet.tail(n) for n in list(devnet.procs))
            assert uptime[0].uptime_bps == 10_000
            assert hub.uptime_bps(uptime[0].epoch, honest_id) == 10_000

            # Restart safety: operator 0 restarts on its database, resumes from its cursor, serves
            # health and metrics, and re-attests nothing that is already attested.
            attestations_before = len(list(hub.AttestationAccepted.range(0, chain.blocks.height + 1)))
            devnet.stop("oracle-0")
            start_oracle(0)
            devnet.wait_http("oracle-0", urls[ops[0].address])
            time.sleep(5)
            metrics = requests.get(urls[ops[0].address] + "/metrics", timeout=5).text
            last_block = [ln for ln in metrics.splitlines() if ln.startswith("gpunet_oracle_last_block")]
            assert last_block and float(last_block[0].split()[-1]) >= 1
            assert requests.get(urls[ops[0].address] + "/health", timeout=5).json()["ok"] is True
            assert len(list(hub.AttestationAccepted.range(0, chain.blocks.height + 1))) == attestations_before

            # Scheduled renewal: once an Active machine's attestation is within the renewal margin
            # (min(6 h, ttl / 4) = 15 min here) of expiring, the operators challenge it again and
            # a quorum extends it under the next nonce, with no one asking.
            until = registry.attested_until(honest_id)
            nonce = hub.attestation_nonce(honest_id)
            skip = until - chain.blocks.head.timestamp - 600  # 10 min before expiry
            chain.provider.make_request("evm_increaseTime", [skip])
            chain.mine()
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and registry.attested_until(honest_id) == until:
                chain.mine()  # anvil mines only on transactions: keep chain time moving
                time.sleep(1)
            renewed = registry.attested_until(honest_id)
            assert renewed > until, "no renewal:\n" + "\n".join(devnet.tail(n) for n in list(devnet.procs))
            assert hub.attestation_nonce(honest_id) == nonce + 1
            assert registry.machine_status(honest_id) == MachineStatus.ACTIVE
    finally:
        devnet.stop_all()
