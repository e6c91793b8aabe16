"""`make demo` runs green: a real anvil, 3 oracle operators (quorum 2 of 3), four provider agents
(one lying about its hardware, one returning wrong job results, one taking a job and never
delivering it), two users submitting jobs of three kinds, priced in USD and settled by
burn-and-mint at each provider's claim (its worker claims what finalization credited it); drawn
and disputed jobs get JobVerdicts from the oracle processes; then the economy:
PriceFeed rounds, Emissions epoch 0 finalized, its rewards root posted and claimed, supply checked.

And it reads well: nothing on the console but the demo's own lines (no ape log line, no library
warning, nothing on stderr), no line over 100 columns, a closing summary of 10-15 lines, and the
shared deployments/ record left alone (the demo's record is in its own log directory)."""

import os
import re
import subprocess
import sys
import time

import pytest

from offchain.chain.deploy import REPO_ROOT
from offchain.constants import JobStatus

pytestmark = pytest.mark.anvil

APE_LOG_LINE = re.compile(r"^\s*(INFO|WARNING|SUCCESS|ERROR|DEBUG|CRITICAL):")
LIBRARY_WARNING = re.compile(r"\w+Warning\b|warnings\.warn")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One demo run for this file's tests: (the finished process, its log directory, the shared
    deployment records' mtimes before it)."""
    log_dir = tmp_path_factory.mktemp("demo")
    shared = sorted((REPO_ROOT / "deployments").glob("*.json"))
    before = {p: p.stat().st_mtime_ns for p in shared}
    out = subprocess.run(
        [sys.executable, "-m", "scripts.demo", "--log-dir", str(log_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return out, log_dir, before


def test_demo__runs_and_every_outcome_is_the_expected_one(demo_run):
    out, tmp_path, before = demo_run
    shared = sorted(before)
    text = out.stdout
    assert out.returncode == 0, text[-6000:] + out.stderr[-4000:]
    lines = text.splitlines()

    # The console: the demo's lines only, each within 100 columns.
    assert out.stderr.strip() == "", out.stderr[-4000:]
    assert [ln for ln in lines if APE_LOG_LINE.match(ln)] == []
    assert [ln for ln in lines if LIBRARY_WARNING.search(ln)] == []
    assert [ln for ln in lines if len(ln) > 100] == []
    assert "Confirmed 0x" in (tmp_path / "demo.log").read_text()  # ape's lines went to the log file
    # Its own deployment record, handed to the child processes; the shared ones untouched.
    assert (tmp_path / "deployment.json").exists() and "deployment record:" in text
    assert {p: p.stat().st_mtime_ns for p in shared if p.exists()} == before

    for phase in ("1. Chain.", "2. Processes.", "3. Hardware.", "4. Price.", "5. Jobs.", "6. Checking.",
                  "7. Settlement.", "8. Rewards."):  # fmt: skip
        assert phase in text
    for outcome in ("FAILED", "FINALIZED", "EXPIRED", "ACTIVE", "JAILED"):
        assert outcome in text
    for kind in ("matmul_chain", "mlp_train", "toploc_generate"):
        assert kind in text
    assert "audit verdicts" in text and "mismatch" in text
    assert "wrongly disputed" in text and "(bond 1.000)" in text  # the false dispute lost its bond
    assert "honest ends richer than cheater" in text
    assert "PriceFeed GPU/USD: 1.25 USD" in text
    for table in ("economy: token", "economy: emissions epoch 0", "economy: provider earnings"):
        assert table in text
    assert "no-show penalty" in text and "was posted" in text
    assert "settlement (each Settlement.Settled" in text
    settlement = text.split("settlement (each Settlement.Settled")[1].split("reputation after the jobs")[0]
    assert "NO" not in settlement and "claim by" in settlement
    # honest's worker claimed (one row per claim, each naming the finalized jobs it paid).
    assert any(ln.split()[:1] == ["honest"] and "yes" in ln for ln in settlement.splitlines())
    assert "totalSupply (== total_minted - total_burned: yes)" in text

    # The summary: who cheated and how each was caught, who earned what, the supply change.
    start = lines.index("Summary")
    end = next(i for i, ln in enumerate(lines) if "expectations held: demo OK" in ln)
    summary = "\n".join(lines[start : end + 1])
    assert 10 <= end + 1 - start <= 15, summary
    for said in ("liar", "failed the timed hardware challenge", "cheater", "flaky", "no-show penalty", "wrong",
                 "Net", "honest +", "Token supply"):  # fmt: skip
        assert said in summary, said
    assert "drawn for audit" in summary or "own re-run differed" in summary


# ---------------------------------------------------------------------------- the explorer


def _start_explorer(log_dir):
    """`make explorer` over the demo's saved chain: (process, explorer URL, anvil URL)."""
    import queue
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.explorer_demo", "--demo-dir", str(log_dir), "--port", "0"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    seen, anvil, url = [], None, None
    deadline = time.monotonic() + 240
    while url is None and time.monotonic() < deadline:
        try:
            ln = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                raise AssertionError("explorer exited:\n" + "".join(seen)) from None
            continue
        seen.append(ln)
        if m := re.search(r"anvil at (http://\S+),", ln):
            anvil = m.group(1)
        if m := re.search(r"gpunet explorer on (http://\S+) ", ln):
            url = m.group(1)
    if not (url and anvil):
        proc.terminate()  # the explorer and its anvil: nothing is left running
        proc.wait(timeout=30)
        raise AssertionError("no explorer URL within 240 s:\n" + "".join(seen))
    return proc, url, anvil


def _chain(anvil_url, record):
    """web3 contracts of the demo's deployment, for the figures the pages must match."""
    from ape import project
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil_url))
    names = {"token": "ComputeToken", "market": "JobMarket", "registry": "ProviderRegistry", "hub": "OracleHub"}
    out = {}
    from offchain.chain.market_abi import merged_contract_type

    for key, name in names.items():
        # JobMarket's ABI with its extension's (cancel, expire, disputes, verdicts: JobFailed, ...).
        ct = merged_contract_type(project) if name == "JobMarket" else getattr(project, name).contract_type
        abi = [a.model_dump(by_alias=True, mode="json") for a in ct.abi]
        out[key] = w3.eth.contract(address=record["contracts"][name], abi=abi)
    return w3, out


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,900"):  # fmt: skip
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def test_explorer__demo_chain__every_page_in_chromium__figures_match_the_chain(demo_run, tmp_path):
    """`make explorer` over the demo's chain, driven in headless Chromium: every page loads
    without a script error, its plots draw, and its figures are the chain's (job states, supply,
    each provider's stake, reputation and slashes, the cheater's failed job and the quorum's
    findings). Screenshots go to $GPUNET_SCREENSHOTS (`make screenshots`: docs/explorer/)."""
    import json
    from collections import Counter
    from pathlib import Path

    import requests
    from selenium.webdriver.common.by import By

    out, log_dir, _ = demo_run
    assert out.returncode == 0, "the demo failed: see the test above"
    shots = Path(os.environ.get("GPUNET_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    record = json.loads((log_dir / "deployment.json").read_text())
    proc, url, anvil = _start_explorer(log_dir)
    driver = None
    try:
        w3, c = _chain(anvil, record)
        api = lambda path: requests.get(url + "/api" + path, timeout=30).json()  # noqa: E731
        n = c["market"].functions.job_count().call()
        states = Counter(JobStatus(c["market"].functions.job_status(i).call()).name for i in range(1, n + 1))
        ov = api("/overview")
        assert ov["jobs_total"] == n and n >= 5
        assert {k: v for k, v in ov["jobs_by_state"].items() if v} == dict(states)
        assert int(ov["supply"]) == c["token"].functions.totalSupply().call()

        driver = _browser()

        def visit(path, shot, must):
            driver.get(url + path)
            driver.set_window_size(1280, max(900, driver.execute_script("return document.body.scrollHeight") + 40))
            for css in must:
                assert driver.find_elements(By.CSS_SELECTOR, css), f"{path}: no {css}"
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == [], f"{path}: {errors}"
            driver.save_screenshot(str(shots / f"{shot}.png"))
            return driver.find_element(By.TAG_NAME, "main").text

        text = visit("/", "overview", ["#jobs-by-state", "[data-plot='supply'][data-drawn] canvas", "#machines"])
        assert driver.find_element(By.ID, "jobs-total").text == str(n)
        for state, count in states.items():
            assert driver.find_element(By.CSS_SELECTOR, f"[data-state='{state}']").text == str(count)
        assert driver.find_element(By.ID, "supply").text == f"{ov['supply_tokens']:,.3f}"
        assert "Supply and price" in text

        # Providers: stake, reputation and slashes as the chain has them.
        provs = api("/providers")["providers"]
        assert len(provs) >= 4
        # A slash is one failed job, one expired job with a penalty, or one failed attestation.
        slashed_on_chain = Counter()
        for lg in c["market"].events.JobFailed().get_logs(from_block=0):
            slashed_on_chain[lg["args"]["provider"].lower()] += 1
        for lg in c["market"].events.JobExpired().get_logs(from_block=0):
            slashed_on_chain[lg["args"]["provider"].lower()] += lg["args"]["penalty"] > 0
        for lg in c["hub"].events.AttestationAccepted().get_logs(from_block=0):
            slashed_on_chain[lg["args"]["provider"].lower()] += lg["args"]["slashed"] > 0
        for p in provs:
            who = w3.to_checksum_address(p["address"])
            stake = c["registry"].functions.stakes(who).call()
            assert int(p["staked"]) == stake[0], p["address"]
            rep = c["registry"].functions.reputation(who).call()
            assert p["reputation"]["completed"] == rep[0] and p["reputation"]["failed"] == rep[1]
            page = api(f"/providers/{p['address']}")
            assert len(page["slashes"]) == slashed_on_chain[p["address"]]
        visit("/providers", "providers", ["#providers"])
        cheater = max(provs, key=lambda p: p["reputation"]["failed"])["address"]  # the demo's "cheater"
        visit(f"/providers/{cheater}", "provider", ["#machines", "#attestations", "#earnings", "#slashes"])
        assert driver.find_element(By.ID, "slash-count").text == str(slashed_on_chain[cheater])

        # The cheater's failed job: its page says so, with each operator's finding.
        failed = api("/jobs?status=failed")["jobs"]
        assert failed and all(c["market"].functions.job_status(j["job_id"]).call() == JobStatus.FAILED for j in failed)
        job = api(f"/jobs/{failed[0]['job_id']}")
        assert [f["finding"] for f in job["findings"]].count("invalid") >= 2
        visit(f"/jobs/{failed[0]['job_id']}", "job", ["#timeline", "#findings", "#settlement"])
        assert driver.find_element(By.ID, "job-status").text == "FAILED"
        visit("/jobs", "jobs", ["table.jobs"])
        visit("/oracles", "oracles", ["#operators"])
        ops = api("/oracles")["operators"]
        assert len(ops) == 3 and all(o["signed_total"] > 0 for o in ops)

        # Verification: the liar's hardware slash, the cheater caught, the no-show, the overhead.
        v = api("/verification")
        assert v["hardware"]["failed_misreport"] >= 1 and v["audits"]["failed"] + v["disputes"]["won_by_user"] >= 1
        assert {"hardware misreport", "invalid result", "no-show"} <= set(v["slashes_by_reason"])
        assert 0 < v["overhead"]["ratio"]
        visit("/verification", "verification", ["#slashes", "#false-slash", "#overhead"])

        # Wrong input: one clear line, 404/400, no trace.
        r = requests.get(url + "/jobs/99999", timeout=10)
        assert r.status_code == 404 and "no job 99999" in r.text
        r = requests.get(url + "/api/providers/0x1234", timeout=10)
        assert r.status_code == 400 and "not an address" in r.json()["error"]
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(timeout=30)
