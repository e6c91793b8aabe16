"""Phase 8 of `make demo` (scripts/demo.py): the economy after the jobs.

The PriceFeed's answer; Emissions epoch 0 ends (anvil's clock jumps past it), the oracles post
the machines' uptime, finalize the epoch and post its rewards root; every provider with a leaf
is claimed for through `gpunet rewards claim` (a real CLI process), and each claim must mint
exactly what its proof and the on-chain pools imply. Then the token's mints and burns, the
epoch's pools and each provider's earnings, and `totalSupply == total_minted - total_burned`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import requests

from scripts import _demo_report as R
from scripts._demo_report import busy, gpu, wait

REPO_ROOT = Path(__file__).resolve().parents[1]
ZERO = "0x" + "00" * 20


def claim(epoch: int, provider: str, oracles: list[str]) -> dict:
    """`gpunet rewards claim` (a real CLI process): proof from an operator, checked against the root."""
    from offchain.devnet import GPUNET

    args = [GPUNET, "rewards", "claim", "--epoch", str(epoch), "--provider", provider, "--test-account", "5", "--json"]
    for u in oracles:
        args += ["--oracle", u]
    out = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        last = ((out.stderr or out.stdout).strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"`gpunet rewards claim` exited with {out.returncode}: {last}")
    return json.loads(out.stdout)


def rewards_phase(demo) -> None:
    from offchain.economics import rewards as E
    from offchain.oracle.epoch_rewards import rewards_from_json
    from scripts._demo_params import EMISSIONS, EPOCH_SECONDS, USD_PRICE

    d, chain, checks, console, f = demo.d, demo.chain, demo.checks, demo.console, demo.facts
    token, registry, em, feed = d.token, d.registry, d.emissions, d.price_feed
    demo.intro(
        8,
        "Rewards",
        f"anvil's clock jumps to the end of the {EPOCH_SECONDS} s emissions epoch: the "
        "oracles post each machine's uptime and a rewards root, and each provider with a share claims it "
        "with `gpunet rewards claim`.",
    )

    # PriceFeed: the three operators report `fixed:1.25`; a quorum-signed round answers it.
    want = int(float(USD_PRICE) * 10**8)
    wait(
        console,
        "waiting for the PriceFeed",
        lambda: feed.latest_round() >= 1 and int(feed.latest_price()) == want,
        60,
        1,
    )
    checks.expect(
        int(feed.latest_price()) == want,
        f"the PriceFeed to answer {USD_PRICE} USD",
        lambda: f"it answers {int(feed.latest_price()) / 1e8}",
    )

    # Chain time moves past the epoch's end, ahead of the wall clock: mine a block per poll, as a
    # live chain would.
    end0 = int(em.GENESIS()) + EPOCH_SECONDS
    jobs_end = chain.blocks.head.timestamp
    chain.provider.make_request("evm_increaseTime", [max(0, end0 + 2 - jobs_end)])
    chain.mine()

    def root_posted() -> bool:
        chain.mine()
        return bytes(em.epochs(0).root) != b"\x00" * 32

    posted, secs = wait(console, "waiting for the oracles to post epoch 0's uptime and rewards root", root_posted, 120)
    checks.require(posted, "the epoch 0 rewards root to be posted within 120 s", "it was not (see oracle-*.log)")
    ep = em.epochs(0)
    (posted_log,) = list(em.RewardsPosted.range(0, chain.blocks.height + 1))
    root = "0x" + bytes(ep.root).hex()
    demo.note(
        f"every job ended {end0 - jobs_end} s before the epoch's end; the rewards root {R.short(root)} was "
        f"posted {secs:.0f} s after it ({posted_log.signers} signatures)"
    )

    # Every leaf (from an operator's tree, rebuilt here to its root) is claimed through the CLI.
    oracles = list(demo.urls.values())
    tree = rewards_from_json(requests.get(f"{oracles[0]}/rewards/0", timeout=10).json())
    checks.expect(tree.root == bytes(ep.root), "the operators' rewards tree to have the posted root")
    pools = (int(ep.work_pool), int(ep.availability_pool), int(ep.total_work), int(ep.total_availability))
    claimed: dict[str, int] = {}
    leaves: dict[str, tuple[int, int]] = {}
    for p in demo.agents:
        name = demo.names[p.address]
        r = requests.get(f"{oracles[0]}/rewards/0/{p.address}", timeout=10)
        if r.status_code != 200:
            checks.expect(p.address not in tree.leaves, f"the operators to serve {name}'s leaf")
            continue
        leaf = r.json()
        w, av = int(leaf["work_units"]), int(leaf["availability_weight"])
        proof = [bytes.fromhex(x.removeprefix("0x")) for x in leaf["proof"]]
        checks.expect(
            E.verify_proof(proof, bytes(ep.root), E.leaf_hash(0, p.address, w, av)),
            f"{name}'s rewards proof to verify against the root",
        )
        expect = E.claim_amount(*pools, w, av)
        before = token.balanceOf(p)
        with busy(console, f"claiming {name}'s epoch 0 rewards with `gpunet rewards claim`"):
            out = claim(0, p.address, oracles)
        minted = token.balanceOf(p) - before
        checks.expect(
            out["amount"] == out["expected"] == expect == minted,
            f"{name}'s claim to mint exactly what its proof and the pools imply",
            f"it minted {minted} wei, expected {expect} ({out})",
        )
        claimed[p.address], leaves[p.address] = minted, (w, av)
        demo.note(f"{name} claimed {gpu(minted)} GPU")
    # Every leaf was claimed, the honest provider (finalized jobs in the epoch) has one, and
    # Emissions minted exactly the claims.
    checks.expect(
        set(tree.leaves) == set(leaves) and demo.honest.address in leaves,
        "every leaf to be claimed, honest's among them",
    )
    checks.expect(
        int(em.epochs(0).claimed) == sum(claimed.values()) == int(em.total_emitted()),
        "Emissions to have minted exactly the claims",
    )

    # Token: supply, mints, burns (Slashed to the zero address are the slashing burns).
    height = chain.blocks.height + 1
    slashes = [lg.event_arguments for lg in registry.Slashed.range(0, height)]
    slash_burn = sum(int(a["amount"]) for a in slashes if str(a["beneficiary"]).lower() == ZERO)
    minted_all, burned_all, supply = int(token.total_minted()), int(token.total_burned()), int(token.totalSupply())
    supply_ok = checks.expect(
        supply == minted_all - burned_all,
        "totalSupply == total_minted - total_burned",
        f"{supply} != {minted_all} - {burned_all}",
    )
    settle_minted = sum(int(a["minted"]) for a in demo.settled)
    settle_burned = sum(int(a["burned"]) for a in demo.settled)
    checks.expect(settle_burned == int(d.settlement.total_burned()), "Settlement.total_burned to be the escrow burned")
    emitted = int(em.total_emitted())
    setup = minted_all - emitted - settle_minted
    t = R.table("economy: token (GPU)", "", "", right=(1,), header=False)
    for label, v in (
        ("minted at setup (stakes, providers' and users' funds)", setup),
        ("minted by providers' claims (job pay)", settle_minted),
        ("minted by Emissions claims", emitted),
        ("total_minted", minted_all),
        ("burned by providers' claims (users' escrow)", settle_burned),
        ("burned by slashing", slash_burn),
        ("burned otherwise", burned_all - slash_burn - settle_burned),
        ("total_burned", burned_all),
        (f"totalSupply (== total_minted - total_burned: {'yes' if supply_ok else 'NO'})", supply),
    ):
        t.add_row(label, gpu(v))
    console.print(t)

    t = R.table(
        f"economy: emissions epoch 0 ({EPOCH_SECONDS} s, {gpu(EMISSIONS.initial_epoch_emission)} GPU scheduled)",
        "", "", right=(1,), header=False,
    )  # fmt: skip
    for label, v in (
        ("budget (the schedule, tapered by the epoch's burns)", gpu(int(ep.budget))),
        ("escrow of the jobs finalized in the epoch (burned)", gpu(int(ep.burned))),
        ("total work (fees of finalized jobs)", gpu(int(ep.total_work))),
        ("work pool", gpu(int(ep.work_pool))),
        ("total availability (uptime weight)", str(int(ep.total_availability))),
        ("availability pool", gpu(int(ep.availability_pool))),
        ("released unclaimable (no one to pay)", gpu(int(posted_log.released))),
        ("claimed", gpu(int(em.epochs(0).claimed))),
    ):
        t.add_row(label, v)
    console.print(t)

    slashed_by = {p.address: 0 for p in demo.agents}
    for a in slashes:
        if a["provider"] in slashed_by:
            slashed_by[a["provider"]] += int(a["amount"])
    income = {p.address: 0 for p in demo.agents}
    for a in demo.settled:
        income[a["provider"]] += int(a["minted"])
    for j in demo.plans:
        income[demo.by_name[j.provider]] += j.bond
    t = R.table(
        "economy: provider earnings (GPU)",
        "provider",
        "job pay + bonds",
        "work units",
        "uptime weight",
        "emissions",
        "slashed",
        "net",
        right=(1, 2, 3, 4, 5, 6),
    )
    for p in demo.agents:
        a = p.address
        w, av = leaves.get(a, (0, 0))
        net = income[a] + claimed.get(a, 0) - slashed_by[a]
        t.add_row(
            demo.names[a],
            gpu(income[a]),
            gpu(w) if a in leaves else "no leaf",
            str(av) if a in leaves else "-",
            gpu(claimed.get(a, 0)),
            gpu(slashed_by[a]),
            f"[{'green' if net > 0 else 'red'}]{gpu(net, True)}[/]",
        )
        f.earnings[demo.names[a]] = (income[a], claimed.get(a, 0), slashed_by[a])
    console.print(t)
    unpaid = [demo.names[p.address] for p in demo.agents if p.address not in leaves]
    if unpaid:
        demo.note(
            f"no epoch rewards for {R.ids(unpaid)}: a provider whose job failed or expired in the epoch, "
            "or whose machine is jailed, gets no share, however real its hardware"
        )
    h_net, c_net = (sum(f.earnings[n][:2]) - f.earnings[n][2] for n in ("honest", "cheater"))
    checks.expect(
        h_net > c_net,
        "honest to end ahead of cheater, emissions included",
        f"honest {gpu(h_net, True)}, cheater {gpu(c_net, True)}",
    )
    f.jobs = demo.plans
    f.supply_end, f.settle_minted, f.settle_burned, f.emitted, f.slash_burned = (
        supply,
        settle_minted,
        settle_burned,
        emitted,
        slash_burn,
    )
    f.other_burned = burned_all - slash_burn - settle_burned
