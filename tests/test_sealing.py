"""offchain/sealing.py: sealed job blobs open for their readers only, refuse tampering, and
name the problem when a key is wrong; the envelope's wraps are checkable by whoever holds the
data key. Pure: no chain, no HTTP."""

from __future__ import annotations

import json
import os
import stat

import pytest

from offchain import sealing as S

USER, PROVIDER, OP1, OP2, OUTSIDER = (f"0x{i:040x}" for i in (1, 2, 3, 4, 5))


@pytest.fixture
def rings(tmp_path):
    return {a: S.Keyring.create(a, tmp_path / f"{a}.json") for a in (USER, PROVIDER, OP1, OP2, OUTSIDER)}


def _readers(rings, *who):
    return [rings[a].recipient() for a in who]


def test_envelope__every_reader_opens_the_same_key_and_spec__an_outsider_none(rings):
    key = S.new_data_key()
    env = S.seal_envelope(b'{"kind":"matmul_chain"}', key, _readers(rings, USER, PROVIDER, OP1, OP2))
    for a in (USER, PROVIDER, OP1, OP2):
        assert rings[a].open_key(env) == key
        assert S.open_blob(env, rings[a].open_key(env)) == b'{"kind":"matmul_chain"}'
    with pytest.raises(S.WrongKey, match=f"not sealed to {OUTSIDER}"):
        rings[OUTSIDER].open_key(env)
    assert b"matmul_chain" not in env  # nothing of the plaintext is in the sealed bytes
    assert sorted(S.recipients_of(env)) == sorted((a, 1) for a in (USER, PROVIDER, OP1, OP2))


def test_data_blob__opens_under_its_key_only(rings):
    key, other = S.new_data_key(), S.new_data_key()
    blob = S.seal_data(b"weights" * 1000, key)
    assert S.open_blob(blob, key) == b"weights" * 1000
    with pytest.raises(S.WrongKey, match="another job's data key"):
        S.open_blob(blob, other)
    assert S.seal_data(b"same", key) != S.seal_data(b"same", key)  # a fresh nonce each time


@pytest.mark.parametrize("where", ["body", "nonce", "commitment", "wrap", "truncated", "magic"])
def test_tampered_blob__refused(rings, where):
    key = S.new_data_key()
    env = S.seal_envelope(b"spec", key, _readers(rings, PROVIDER, OP1))
    header, hb, body = S.parse(env)
    if where == "body":
        bad = env[:-1] + bytes([env[-1] ^ 1])
    elif where == "truncated":
        bad = env[:-5]
    elif where == "magic":
        bad = b"x" + env[1:]
    else:
        h = json.loads(hb)
        if where == "nonce":
            h["nonce"] = "00" * 12
        elif where == "commitment":
            h["commit"] = S.key_commitment(S.new_data_key()).hex()
        else:  # a wrap altered: the whole header is the body's authenticated data
            h["wraps"][1]["e"] = "11" * 32
        nb = json.dumps(h, sort_keys=True, separators=(",", ":")).encode()
        bad = S.MAGIC + len(nb).to_bytes(4, "big") + nb + body
    with pytest.raises(S.SealError):
        S.open_blob(bad, key)
    if where != "commitment":  # (a changed commitment reads as another job's key: WrongKey)
        with pytest.raises(S.Tampered):
            S.open_blob(bad, key)


def test_forged_wrap__wrong_key_error__and_verify_wraps_names_the_reader(rings):
    key = S.new_data_key()
    env = S.seal_envelope(b"spec", key, _readers(rings, PROVIDER, OP1))
    header, hb, body = S.parse(env)
    h = json.loads(hb)
    mine = next(w for w in h["wraps"] if w["to"] == OP1)
    mine["k"] = os.urandom(48).hex()  # what a user who wants the auditors locked out would do
    nb = json.dumps(h, sort_keys=True, separators=(",", ":")).encode()
    forged = S.MAGIC + len(nb).to_bytes(4, "big") + nb + S.parse(S.seal_envelope(b"spec", key, _readers(rings, OP1)))[2]
    with pytest.raises(S.WrongKey, match="forged wrap"):
        rings[OP1].open_key(forged)
    # The provider, holding the key, recomputes every reader's wrap before it accepts:
    assert S.verify_wraps(env, key, _readers(rings, OP1, OP2)) == [f"not sealed to {OP2} (key version 1)"]
    assert S.verify_wraps(forged, key, _readers(rings, OP1)) == [f"the wrap to {OP1} (key version 1) does not open"]
    assert S.verify_wraps(env, key, _readers(rings, PROVIDER, OP1)) == []


def test_wrap_to_a_different_key__commitment_check_refuses_it(rings):
    """A sealer who wraps another key to one reader (to show it a different spec) is caught by
    the key commitment: every reader that opens the envelope has the same key."""
    key, other = S.new_data_key(), S.new_data_key()
    env = S.seal_envelope(b"spec", key, _readers(rings, PROVIDER))
    lie = S.parse(S.seal_envelope(b"spec", other, _readers(rings, OP1)))[0]["wraps"][0]
    header, hb, body = S.parse(env)
    h = json.loads(hb)
    h["wraps"].append(lie)
    nb = json.dumps(h, sort_keys=True, separators=(",", ":")).encode()
    mixed = S.MAGIC + len(nb).to_bytes(4, "big") + nb + body
    with pytest.raises(S.Tampered, match="key commitment"):
        rings[OP1].open_key(mixed)


def test_keyring__file_is_private__reloads__rotation_keeps_old_keys(rings, tmp_path):
    ring = rings[OP1]
    assert stat.S_IMODE(os.stat(ring.path).st_mode) == 0o600
    key = S.new_data_key()
    old_env = S.seal_envelope(b"old", key, [ring.recipient()])
    assert ring.rotate() == 2
    new_env = S.seal_envelope(b"new", key, [ring.recipient()])
    again = S.Keyring.load(ring.path)
    assert (again.current, sorted(again.keys)) == (2, [1, 2])
    assert again.open_key(old_env) == key and again.open_key(new_env) == key
    # KeyDirectory numbered the rotated key 5 (say): the file follows, the wraps still open.
    again.renumber(5)
    env5 = S.seal_envelope(b"x", key, [again.recipient()])
    assert S.Keyring.load(ring.path).open_key(env5) == key


def test_keyring__lost_key_is_key_missing__not_a_forgery(rings, tmp_path):
    """An operator that lost its key file (a new one was made) cannot open old jobs: KeyMissing,
    which the auditor treats as its own trouble, never as the provider's fault."""
    key = S.new_data_key()
    env = S.seal_envelope(b"spec", key, [rings[OP1].recipient()])
    fresh = S.Keyring(OP1, {2: S.X25519PrivateKey.generate()}, 2)
    with pytest.raises(S.KeyMissing, match="holds version"):
        fresh.open_key(env)


def test_user_key_file__another_file_of_the_same_account__says_so_not_just_forged(tmp_path):
    """A user's own key file numbers its keys itself, so a second file of the same account also
    has a version 1: opening a job sealed with the first file names the likely cause (review of
    a newcomer's run: the message said only "a forged wrap")."""
    first = S.Keyring.create(USER, tmp_path / "first.json")
    second = S.Keyring.create(USER, tmp_path / "second.json")
    env = S.seal_envelope(b"spec", S.new_data_key(), [first.recipient()])
    with pytest.raises(S.WrongKey, match="sealed with another key file of this account"):
        second.open_key(env)


def test_keyring__wrong_owner_or_bad_file__one_clear_error(tmp_path):
    ring = S.Keyring.create(OP1, tmp_path / "k.json")
    with pytest.raises(S.SealError, match=f"belongs to {OP1}"):
        S.Keyring.load_or_create(ring.path, OP2)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(S.SealError, match="cannot read the key file"):
        S.Keyring.load(tmp_path / "bad.json")


def test_overhead_is_small_per_megabyte():
    """Not a timing assertion: sealing is one AEAD pass, so the sealed size is the plaintext
    plus a fixed header and tag (the speed is measured by scripts/seal_bench.py)."""
    key = S.new_data_key()
    for n in (0, 1, 1 << 20):
        assert len(S.seal_data(b"\0" * n, key)) - n < 200


def test_pack_spec__inputs_by_plaintext_hash__where_by_sealed_address():
    spec = {"kind": "torchscript_infer", "inputs": {"model": "aa" * 32, "input": "bb" * 32}}
    where = {"aa" * 32: "cc" * 32, "bb" * 32: "dd" * 32}
    assert S.unpack_spec(S.pack_spec(spec, where, USER)) == (spec, where, USER)
    with pytest.raises(ValueError, match="do not name exactly"):
        S.unpack_spec(S.pack_spec(spec, {"aa" * 32: "cc" * 32}, USER))
    with pytest.raises(ValueError, match="canonical JSON"):
        S.unpack_spec(b'{"spec": {}, "sealed_inputs": {}, "user": "0x"}')  # spaces: not canonical
    mixed = {"kind": "x", "inputs": {"a": 1, "b": "bb" * 32}}  # what made `sorted` raise TypeError
    with pytest.raises(ValueError):
        S.unpack_spec(S.pack_spec(mixed, {"bb" * 32: "cc" * 32}, USER))
    with pytest.raises(ValueError):
        S.unpack_spec(b"[" * 100_000 + b"]" * 100_000)  # deep nesting: RecursionError, caught


def _rewrap(env: bytes, mutate) -> bytes:
    header, hb, body = S.parse(env)
    h = json.loads(hb)
    mutate(h)
    nb = json.dumps(h, sort_keys=True, separators=(",", ":")).encode()
    return S.MAGIC + len(nb).to_bytes(4, "big") + nb + body


def test_attack_decoy_wrap_before_the_real_one__refused_by_everyone(rings):
    """A user puts a garbage wrap to an auditor before the real one: the provider's check would
    have looked at one, the auditor's opening at the other (review finding). Two wraps to one
    reader are refused outright, by the provider and the auditor alike."""
    key = S.new_data_key()
    env = S.seal_envelope(b"spec", key, _readers(rings, PROVIDER, OP1))
    real = next(w for w in S.parse(env)[0]["wraps"] if w["to"] == OP1)
    decoy = dict(real, k=os.urandom(48).hex())
    bad = _rewrap(env, lambda h: h["wraps"].insert(0, decoy))
    for who in (PROVIDER, OP1):
        with pytest.raises(S.Tampered, match="one wrap per reader"):
            rings[who].open_key(bad)


def test_attack_deeply_nested_header__one_clear_error(rings):
    key = S.new_data_key()
    hb = b"[" * 50_000 + b"]" * 50_000
    blob = S.MAGIC + len(hb).to_bytes(4, "big") + hb + b"x"
    with pytest.raises(S.Tampered):
        S.open_blob(blob, key)
    big = b"{" + b" " * (S.MAX_HEADER_BYTES + 1) + b"}"
    with pytest.raises(S.Tampered, match="too large"):
        S.open_blob(S.MAGIC + len(big).to_bytes(4, "big") + big, key)


def test_unpublished_key_file__a_wrap_that_fails_is_key_missing_not_forged(rings, tmp_path):
    """An operator whose key file was lost makes a new one, numbered 1 like the old key, and
    has not published it yet: a job sealed to the old v1 must not read as a forged wrap
    (that would be an invalid verdict against an honest provider; review finding)."""
    key = S.new_data_key()
    env = S.seal_envelope(b"spec", key, [rings[OP1].recipient()])
    fresh = S.Keyring.create(OP1, tmp_path / "fresh.json", published=False)
    with pytest.raises(S.KeyMissing):
        fresh.open_key(env)
    fresh.renumber(2)  # published: KeyDirectory made it version 2
    with pytest.raises(S.KeyMissing, match="holds version"):
        S.Keyring.load(fresh.path).open_key(env)


def test_low_order_published_key__counts_as_no_key():
    """An operator publishing the all-zero point (or another low-order one) must not make every
    client's sealing fail nor every provider refuse jobs (review finding): it is skipped."""
    from offchain.chain.keys import usable_key

    assert not usable_key(bytes(32))
    assert usable_key(S.Keyring.create(OP1).public_key())
    with pytest.raises(ValueError):
        S.seal_envelope(b"x", S.new_data_key(), [S.Recipient(OP1, bytes(32), 1)])


def test_seal_bench_micro__runs_and_reports_every_figure():
    """`make seal-bench`'s in-process half (the live half needs anvil: run by hand)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/ runs from the checkout
    from scripts.seal_bench import micro

    out = micro(1)
    assert set(out["per_mib"]) == {"1MiB", "16MiB", "64MiB"}
    assert all(v > 0 for fig in out["per_mib"].values() for v in fig.values())
    assert out["per_job"]["client_ms"] > 0 and out["per_job"]["sealed_output_overhead_bytes"] < 200


def test_rotation_by_another_process__running_reader_opens_the_new_version_after_its_reload(tmp_path):
    """`gpunet keys rotate` runs beside a running operator: the file gains a published v2. The
    operator's keyring reloads on the first job sealed to v2; the reload must bring which
    versions are confirmed on-chain too, or every v2 job stays KeyMissing until a restart
    (no audits of sealed jobs: a cheater is paid at the timeout). An attacker's review."""
    running = S.Keyring.create(OP1, tmp_path / "op.json", published=False)
    running.renumber(1)
    other = S.Keyring.load(tmp_path / "op.json")  # the CLI's process
    other.rotate()
    other.renumber(2)  # as keys.publish numbers it after KeyDirectory's answer
    key = S.new_data_key()
    assert running.open_key(S.seal_envelope(b"spec", key, [other.recipient()])) == key
    assert running.published == {1, 2}


def test_key_file_made_anew_while_running__old_wrap_that_fails_is_key_missing_not_forged(tmp_path):
    """The variant: the file is replaced by a new one (the old was lost), not yet published; a
    reload (any job naming a version this process lacks triggers one) must forget that v1 was
    confirmed, or a job sealed to the old v1 reads as a forged wrap: an invalid verdict."""
    running = S.Keyring.create(OP1, tmp_path / "op.json", published=False)
    running.renumber(1)
    old_env = S.seal_envelope(b"spec", S.new_data_key(), [running.recipient()])
    (tmp_path / "op.json").unlink()
    S.Keyring.create(OP1, tmp_path / "op.json", published=False)  # new v1, unpublished
    future = S.Keyring(OP1, {3: S.X25519PrivateKey.generate()}, 3)
    with pytest.raises(S.KeyMissing):  # a job sealed to a version it lacks: it reloads the file
        running.open_key(S.seal_envelope(b"spec", S.new_data_key(), [future.recipient()]))
    with pytest.raises(S.KeyMissing):
        running.open_key(old_env)


def test_renumber__a_version_never_confirmed_gives_way__a_confirmed_one_never(tmp_path):
    """A rotation whose publication failed leaves an unconfirmed version N+1 in the file; the
    next rotation makes N+2, which KeyDirectory numbers N+1. That used to fail after the
    transaction ("already another key") and every later rotation the same way (found reviewing
    this session's change); the unconfirmed key sealed nothing, so it gives way."""
    ring = S.Keyring.create(OP1, tmp_path / "op.json", published=False)
    ring.renumber(1)
    ring.rotate()  # v2: its publication fails
    ring.rotate()  # v3: published, KeyDirectory calls it v2
    ring.renumber(2)
    assert (ring.current, sorted(ring.keys), ring.published) == (2, [1, 2], {1, 2})
    assert S.Keyring.load(tmp_path / "op.json").current == 2
    ring.rotate()  # v3
    with pytest.raises(S.SealError, match="version 1 is already another key"):
        ring.renumber(1)  # a confirmed version is never overwritten
