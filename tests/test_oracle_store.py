"""The oracle's SQLite state: the equivocation guard, the deployment binding, restart safety."""

import pytest

from offchain.oracle.store import Store


def test_sign_once__second_version__returns_the_first_and_signs_nothing(tmp_path):
    store = Store(tmp_path / "o.sqlite")
    calls = []

    def sign(digest):
        calls.append(digest)
        return "sig-" + digest

    first = store.sign_once("attestation:1", 0, "0xaa", {"v": 1}, sign)
    again = store.sign_once("attestation:1", 0, "0xaa", {"v": 1}, sign)
    other = store.sign_once("attestation:1", 0, "0xbb", {"v": 2}, sign)
    assert first.signature == again.signature == other.signature == "sig-0xaa"
    assert other.digest == "0xaa" and other.report == {"v": 1}
    assert calls == ["0xaa"]
    # A new nonce is a new subject: signing is allowed again.
    assert store.sign_once("attestation:1", 1, "0xbb", {"v": 2}, sign).signature == "sig-0xbb"


def test_sign_once__survives_restart(tmp_path):
    path = tmp_path / "o.sqlite"
    Store(path).sign_once("uptime:5:1", 0, "0x01", {"a": 1}, lambda d: "s1")
    reopened = Store(path)
    rec = reopened.sign_once("uptime:5:1", 0, "0x02", {"a": 2}, lambda d: pytest.fail("must not sign twice"))
    assert rec.digest == "0x01"


def test_check_binding__other_chain_or_operator__refuses(tmp_path):
    store = Store(tmp_path / "o.sqlite")
    store.check_binding(31337, "0xHub", "0xOp")
    store.check_binding(31337, "0xhub", "0xop")  # case-insensitive addresses
    with pytest.raises(RuntimeError, match="chain_id=31337"):
        store.check_binding(1, "0xHub", "0xOp")
    with pytest.raises(RuntimeError, match="operator"):
        store.check_binding(31337, "0xHub", "0xOther")


def test_upsert_machine__first_seen_moves_only_when_status_or_expiry_changes(tmp_path):
    store = Store(tmp_path / "o.sqlite")
    store.upsert_machine(1, "0xP", 1, 256, "http://a", 1, 0, 100.0)
    store.upsert_machine(1, "0xP", 1, 256, "http://b", 1, 0, 200.0)  # endpoint change only
    (m,) = store.machines()
    assert (m["endpoint"], m["first_seen"]) == ("http://b", 100.0)
    store.upsert_machine(1, "0xP", 1, 256, "http://b", 2, 5000, 300.0)
    (m,) = store.machines()
    assert (m["status"], m["attested_until"], m["first_seen"]) == (2, 5000, 300.0)


def test_record_probe__counts_per_epoch(tmp_path):
    store = Store(tmp_path / "o.sqlite")
    for ok in (True, False, True):
        store.record_probe(7, 1, ok)
    store.record_probe(8, 1, True)
    assert store.probe_counts(7, 1) == (3, 2)
    assert store.probe_counts(8, 1) == (1, 1)
    assert store.probe_counts(9, 1) == (0, 0)
