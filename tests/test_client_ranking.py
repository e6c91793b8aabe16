"""The client's offer ranking uses the oracle quorum's uptime reports (issue 3: "UptimeReport ...
feed reputation"), on the in-process chain with real contracts: offers at equal price rank by
their machines' latest reported uptime (OracleHub `UptimeRecorded`, submitted by a 2-of-3
operator quorum as in tests/test_oracle_hub.py), a provider without a report yet is unknown
(ranked after known-good providers, never excluded), price and bad record still come first, and
`gpunet job submit`'s offers table and `gpunet provider show` print the uptime.
"""

import contextlib
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from conftest import CPU, PRICE
from rich.console import Console

from offchain.chain import reports as R
from offchain.client import sdk
from offchain.constants import MAX_BPS


@pytest.fixture(scope="module", autouse=True)
def _wider_fixtures_first(hub, chain, deployment, registry, provider, provider2, user2, keeper):
    """Session/module fixtures set up before the first test: ape's snapshot isolation warns
    and rebases when one is first set up inside a test."""


@pytest.fixture
def h(deployment, hub, chain):
    """The SDK's handles. Event scans start at the test's first block, as they start at a
    deployment record's `block` elsewhere: nothing before the test offers, registers or reports,
    and eth-tester's log filter costs time in every block it walks."""
    d = deployment
    return SimpleNamespace(
        token=d.token,
        registry=d.registry,
        market=d.market,
        settlement=d.settlement,
        hub=hub,
        chain=chain,
        record={"block": chain.blocks.height},
    )


@pytest.fixture
def report_uptime(hub, pool, chain, keeper):
    """Submits a machine's UptimeReport for an epoch with a quorum of two operator signatures."""

    def _report(machine_id, epoch, probes, successes):
        r = {
            "epoch": epoch,
            "machine_id": machine_id,
            "probes": probes,
            "successes": successes,
            "nonce": hub.uptime_nonce(epoch, machine_id),
        }
        td = R.uptime_typed_data(hub.address, chain.chain_id, r)
        sigs = R.sort_signatures([(a.address, R.sign_report(a.private_key, td)) for a in pool[:2]])
        hub.submit_uptime(R.report_tuple(R.UPTIME_FIELDS, r), sigs, sender=keeper)

    return _report


def _order(h):
    return [o.provider for o in sdk.rank_offers(h, CPU)]


# ---------------------------------------------------------------------------- ranking on-chain


def test_rank_offers__equal_price__higher_reported_uptime_first(h, make_provider, report_uptime, provider, provider2):
    m1, m2 = make_provider(provider), make_provider(provider2)
    report_uptime(m1, 3, 6, 3)  # 50%
    report_uptime(m2, 3, 6, 6)  # 100%
    offers = sdk.rank_offers(h, CPU)
    assert [o.provider for o in offers] == [provider2.address, provider.address]
    assert [o.uptime_bps for o in offers] == [MAX_BPS, 5_000]
    assert offers[0].uptime[m2] == sdk.Uptime(m2, 3, MAX_BPS, 6, 6)
    # The next epoch's reports swap them: the latest epoch counts, not the best or the first.
    report_uptime(m1, 4, 6, 6)
    report_uptime(m2, 4, 6, 2)
    assert _order(h) == [provider.address, provider2.address]
    # An older epoch reported late changes nothing.
    report_uptime(m2, 2, 6, 6)
    assert _order(h) == [provider.address, provider2.address]
    assert sdk.latest_uptime(h, [m2])[m2].epoch == 4


def test_rank_offers__no_report_yet__unknown_ranked_after_known_good_not_excluded(
    h, make_provider, report_uptime, provider, provider2, user2
):
    good, new, flaky = make_provider(provider), make_provider(provider2), make_provider(user2)
    report_uptime(good, 0, 6, 5)  # 83.33%
    report_uptime(flaky, 0, 6, 1)  # 16.66%: worse than unknown
    offers = sdk.rank_offers(h, CPU)
    assert [o.provider for o in offers] == [provider.address, provider2.address, user2.address]
    unknown = offers[1]
    assert unknown.machine_ids == [new] and unknown.uptime == {} and unknown.uptime_bps is None
    assert unknown.uptime_text() == "unknown"
    assert offers[0].uptime_text() == "83.33% (epoch 0)"
    # At exactly the unknown prior, a known uptime ranks first.
    report_uptime(flaky, 1, 2, 1)
    assert _order(h) == [provider.address, user2.address, provider2.address]


def test_rank_offers__no_hub__every_offer_unknown(h, make_provider, report_uptime, provider, provider2):
    m1 = make_provider(provider)
    make_provider(provider2)
    report_uptime(m1, 0, 6, 6)
    del h.hub  # handles without OracleHub (e.g. a test namespace): ranked as before, by price etc.
    offers = sdk.rank_offers(h, CPU)
    assert len(offers) == 2 and all(o.uptime_bps is None for o in offers)


def test_rank_offers__cheaper_offer_first_whatever_its_uptime(h, make_provider, report_uptime, provider, provider2):
    cheap, dear = make_provider(provider, price=PRICE), make_provider(provider2, price=PRICE + 1)
    report_uptime(cheap, 0, 6, 0)
    report_uptime(dear, 0, 6, 6)
    assert _order(h) == [provider.address, provider2.address]


def test_rank_offers__several_machines__mean_of_reported(
    h, make_provider, report_uptime, registry, provider, provider2
):
    a = make_provider(provider)
    b = make_provider(provider, stake=0, price=0)  # a second Active CPU machine, same offer
    other = make_provider(provider2)
    report_uptime(a, 5, 4, 4)  # 100%
    report_uptime(other, 5, 4, 3)  # 75%
    (mine,) = [o for o in sdk.rank_offers(h, CPU) if o.provider == provider.address]
    # b has no report yet: the mean of the reported machines, and the table says 1 of 2.
    assert mine.machine_ids == [a, b] and mine.uptime_bps == MAX_BPS
    assert mine.uptime_text() == "100.00% (epoch 5, 1/2 machines)"
    report_uptime(b, 6, 4, 2)  # 50%, one epoch later
    (mine,) = [o for o in sdk.rank_offers(h, CPU) if o.provider == provider.address]
    assert mine.uptime_bps == 7_500 and mine.uptime_text() == "75.00% (epochs 5-6)"
    # 75% each: tied on uptime, so more completed jobs, then the address decide (both have none).
    assert _order(h) == sorted([provider.address, provider2.address], key=str.lower)


# ---------------------------------------------------------------------------- rank_key alone


def _offer(addr, price=PRICE, completed=0, failed=0, expired=0, bps=None):
    up = {} if bps is None else {1: sdk.Uptime(1, 0, bps, 10, bps // 1_000)}
    rep = {"completed": completed, "failed": failed, "expired": expired}
    return sdk.Offer(addr, CPU, price, [1], "", rep, 0, up)


def test_rank_key__price_then_bad_record_then_uptime_then_completed():
    offers = [
        _offer("0xa", price=PRICE + 1, bps=MAX_BPS),  # dearest: last
        _offer("0xb", failed=1, bps=MAX_BPS),  # a failed job outweighs uptime
        _offer("0xc", bps=6_000, completed=50),  # uptime outweighs completed jobs
        _offer("0xd", bps=9_000),
        _offer("0xe"),  # unknown: after >= 50%
        _offer("0xf", bps=4_000, completed=99),  # known-bad: after unknown
        _offer("0x0", bps=9_000, completed=1),  # same uptime as 0xd, more completed
    ]
    ranked = [o.provider for o in sorted(offers, key=sdk.Offer.rank_key)]
    assert ranked == ["0x0", "0xd", "0xc", "0xe", "0xf", "0xb", "0xa"]


# ---------------------------------------------------------------------------- what the CLI prints


def test_offer_table__shows_uptime_column(h, make_provider, report_uptime, provider, provider2):
    from offchain.cli.job import _offer_table

    m1 = make_provider(provider)
    make_provider(provider2)
    report_uptime(m1, 2, 3, 2)
    offers = sdk.rank_offers(h, CPU)
    console = Console(record=True, width=400)
    console.print(_offer_table(offers, offers[:1], 1_000))
    text = console.export_text()
    assert "uptime" in text and "66.66% (epoch 2)" in text and "unknown" in text


def test_provider_show__prints_each_machines_latest_uptime(
    monkeypatch, h, make_provider, report_uptime, registry, provider
):
    import offchain.cli.provider as cli
    from offchain.cli import cli as gpunet

    a = make_provider(provider)
    b = make_provider(provider, stake=0, price=0)
    report_uptime(a, 7, 6, 5)
    report_uptime(a, 8, 6, 4)
    monkeypatch.setattr(cli, "session", lambda chain: contextlib.nullcontext(h))
    monkeypatch.setattr(cli, "console", Console(record=True, width=400))
    res = CliRunner().invoke(gpunet, ["provider", "show", provider.address])
    assert res.exit_code == 0, res.output
    rows = {line.split("│")[1].strip(): line for line in cli.console.export_text().splitlines() if line.count("│") > 3}
    assert "66.66% (epoch 8: 4/6 probes)" in rows[str(a)]
    assert "no report yet" in rows[str(b)]
