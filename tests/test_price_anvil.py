"""Token/USD end to end: anvil, 3 real `gpunet oracle run` processes (M = 2), one source kind each.

- operator 0 reads `fixed:1.25`, operator 1 `file:PATH`, operator 2 `url:` (a local JSON server);
- each round's leader gathers the others' signed observations over HTTP and submits them; the
  feed answers the median, which follows the sources when they move;
- `gpunet price show --json` reads the answer back; the operators' metrics count the rounds;
- Settlement prices jobs at the feed's answer: `quote(usd)` is the tokens `usd` buys, rounded up.

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
from offchain.constants import ONE_TOKEN
from offchain.devnet import GPUNET, REPO_ROOT, Devnet, stake_operators
from offchain.params import PriceFeedParams

pytestmark = pytest.mark.anvil

OPERATOR_ACCOUNTS = (7, 8, 9)
USD = 10**8
ORACLE_ARGS = ["--poll", "0.5", "--leader-timeout", "5", "--price-interval", "3"]


class UsdServer:
    """GET / -> {"usd": <value>}; `value` can be changed while it runs."""

    def __init__(self, value: float):
        self.value = value
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_GET(self):
                body = json.dumps({"usd": server.value}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/price"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_price_rounds__quorum_of_real_processes(tmp_path, monkeypatch):
    from ape import accounts, chain, networks, project

    record = tmp_path / "deployment.json"
    monkeypatch.setenv(DEPLOYMENT_ENV, str(record))
    devnet = Devnet(tmp_path)
    usd_server = UsdServer(1.20)
    price_file = tmp_path / "price.txt"
    price_file.write_text("1.30\n")
    t0 = time.monotonic()
    try:
        with running_anvil(log_path=tmp_path / "anvil.log"), networks.parse_network_choice("ethereum:local:foundry"):
            try:
                _run(tmp_path, devnet, usd_server, price_file, accounts, chain, project)
            finally:
                devnet.stop_all()  # before anvil goes away
    finally:
        devnet.stop_all()
        usd_server.close()
        print(f"\nprice anvil test took {time.monotonic() - t0:.1f} s")


def _run(tmp_path, devnet, usd_server, price_file, accounts, chain, project):
    """Deploys with 3 operators (M = 2), starts their processes, follows the rounds."""
    record = tmp_path / "deployment.json"
    a = accounts.test_accounts
    deployer = a[0]
    ops = [a[i] for i in OPERATOR_ACCOUNTS]
    d = deploy_all(project, deployer, local=True, operators=[o.address for o in ops], threshold=2,
                   # Sources 1.20 .. 1.40 spread up to 17% (so some mixed rounds are abandoned);
                   # rounds every few seconds in this test.
                   price_params=PriceFeedParams(max_age=300, max_deviation_bps=2_000, max_observation_age=60,
                                                max_spread_bps=1_500, min_round_interval=2),
                   record_path=record, chain_id=chain.chain_id)  # fmt: skip
    token, hub, feed = d.token, d.hub, d.price_feed
    stake_operators(token, hub, deployer, ops, 1_000 * ONE_TOKEN, mint=2_000 * ONE_TOKEN)

    sources = ["fixed:1.25", f"file:{price_file}", f"url:{usd_server.url}"]
    urls = devnet.start_oracles(
        OPERATOR_ACCOUNTS,
        [o.address for o in ops],
        tmp_path,
        ORACLE_ARGS,
        each=[["--price-source", src] for src in sources],
    )
    for i, o in enumerate(ops):
        devnet.wait_http(f"oracle-{i}", urls[o.address])

    # Rounds with all three observations answer the median, 1.25 (with two: the lower one).
    devnet.wait_for(lambda: feed.latest_round() >= 2, 40, "two price rounds")
    assert feed.latest_price() in (120 * USD // 100, 125 * USD // 100)
    rounds = list(feed.RoundAccepted.range(0, chain.blocks.height + 1))
    assert all(lg.signers >= 2 for lg in rounds)
    assert any(lg.signers == 3 and lg.answer == 125 * USD // 100 for lg in rounds), rounds

    # The sources move (+10% and +12.5%, within the 20% guard): the median follows.
    price_file.write_text("1.40\n")
    usd_server.value = 1.35
    devnet.wait_for(lambda: feed.latest_price() == 135 * USD // 100, 30, "the median to follow the sources")
    rid, answer, started, updated, answered = feed.latestRoundData()
    assert answer == 135 * USD // 100 and rid == answered == feed.latest_round()
    assert started <= updated <= chain.blocks.head.timestamp

    # Jobs are funded at the feed's answer: $1 of work escrows 1 / price tokens, rounded up.
    settlement = d.settlement
    for _ in range(10):  # a round may land between the two reads
        price = int(settlement.price())
        one_usd_in_tokens = int(settlement.quote(ONE_TOKEN))
        if int(settlement.price()) == price:
            break
    assert price in (125 * USD // 100, 135 * USD // 100)
    assert one_usd_in_tokens == -(-ONE_TOKEN * USD // price)  # ceil(1e18 x 1e8 / price)

    out = subprocess.run([GPUNET, "price", "show", "--json"], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    shown = json.loads(out.stdout)
    assert shown["feed"] == feed.address and shown["round"] >= rid and shown["stale"] is False
    assert shown["usd"] >= 1.35 and shown["description"] == "GPU / USD"

    submitted = 0.0
    for o in ops:
        metrics = requests.get(urls[o.address] + "/metrics", timeout=5).text
        for ln in metrics.splitlines():
            if ln.startswith("gpunet_oracle_price_rounds_submitted_total"):
                submitted += float(ln.split()[-1])
            if ln.startswith("gpunet_oracle_price_usd "):
                assert float(ln.split()[-1]) > 1.0
    assert submitted >= feed.latest_round() - 1  # the last round may land between reads
