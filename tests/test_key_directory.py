"""KeyDirectory: each account publishes (and rotates) its own X25519 encryption key; `keys_of`
answers for many accounts in one call. No roles: an account only ever writes its own entry."""

import time

import ape
import pytest

EMPTY = b"\x00" * 32
KEY_A = bytes.fromhex("11" * 32)
KEY_B = bytes.fromhex("22" * 32)
KEY_C = bytes.fromhex("33" * 32)


@pytest.fixture(scope="module")
def keys(deployment):
    return deployment.key_directory


def _timestamp(chain, tx) -> int:
    return chain.blocks[tx.block_number].timestamp


def test_deployment__records_key_directory(deployment, keys):
    assert deployment.record["contracts"]["KeyDirectory"] == keys.address
    assert deployment.record["constructor_args"]["KeyDirectory"] == []
    assert len(ape.chain.provider.get_code(keys.address)) > 0


def test_set_encryption_key__first__version_1_time_and_event(keys, chain, provider):
    assert keys.key_version(provider) == 0
    assert keys.encryption_key(provider) == EMPTY
    assert keys.first_published_at(provider) == 0
    tx = keys.set_encryption_key(KEY_A, sender=provider)
    assert keys.encryption_key(provider) == KEY_A
    assert keys.key_version(provider) == 1
    assert keys.first_published_at(provider) == _timestamp(chain, tx) > 0
    (ev,) = tx.decode_logs(keys.EncryptionKeySet)
    assert (ev.account, ev.key, ev.version) == (provider.address, KEY_A, 1)


def test_set_encryption_key__rotation__version_increments_and_first_time_kept(keys, chain, provider):
    first = keys.set_encryption_key(KEY_A, sender=provider)
    published = _timestamp(chain, first)
    chain.pending_timestamp = published + 1_000
    second = keys.set_encryption_key(KEY_B, sender=provider)
    assert _timestamp(chain, second) >= published + 1_000
    assert keys.encryption_key(provider) == KEY_B
    assert keys.key_version(provider) == 2
    assert keys.first_published_at(provider) == published
    (ev,) = second.decode_logs(keys.EncryptionKeySet)
    assert (ev.account, ev.key, ev.version) == (provider.address, KEY_B, 2)
    # Back to an earlier key is a rotation too (only the current key is refused).
    third = keys.set_encryption_key(KEY_A, sender=provider)
    assert keys.encryption_key(provider) == KEY_A
    assert keys.key_version(provider) == 3
    assert keys.first_published_at(provider) == published
    assert third.decode_logs(keys.EncryptionKeySet)[0].version == 3


def test_set_encryption_key__empty__reverts(keys, provider):
    with ape.reverts("key_directory: empty key"):
        keys.set_encryption_key(EMPTY, sender=provider)
    # Also once a key is published: a key cannot be withdrawn by writing zeros.
    keys.set_encryption_key(KEY_A, sender=provider)
    with ape.reverts("key_directory: empty key"):
        keys.set_encryption_key(EMPTY, sender=provider)
    assert (keys.encryption_key(provider), keys.key_version(provider)) == (KEY_A, 1)


def test_set_encryption_key__unchanged__reverts(keys, provider):
    keys.set_encryption_key(KEY_A, sender=provider)
    with ape.reverts("key_directory: key unchanged"):
        keys.set_encryption_key(KEY_A, sender=provider)
    assert keys.key_version(provider) == 1


def test_set_encryption_key__writes_only_the_senders_entry(keys, chain, provider, attacker):
    first = keys.set_encryption_key(KEY_A, sender=provider)
    published = _timestamp(chain, first)
    # The attacker publishing (and rotating) the same key binds it to the attacker's account only.
    keys.set_encryption_key(KEY_A, sender=attacker)
    keys.set_encryption_key(KEY_C, sender=attacker)
    assert (keys.encryption_key(attacker), keys.key_version(attacker)) == (KEY_C, 2)
    assert keys.encryption_key(provider) == KEY_A
    assert keys.key_version(provider) == 1
    assert keys.first_published_at(provider) == published


def test_keys_of__order_of_the_request_and_zeros_for_unknown(keys, provider, user, attacker):
    keys.set_encryption_key(KEY_A, sender=provider)
    keys.set_encryption_key(KEY_B, sender=user)
    keys.set_encryption_key(KEY_C, sender=user)
    unknown = "0x000000000000000000000000000000000000dEaD"  # never published
    asked = [user.address, unknown, provider.address, attacker.address, user.address]
    found, versions = keys.keys_of(asked)
    assert list(found) == [KEY_C, EMPTY, KEY_A, EMPTY, KEY_C]
    assert list(versions) == [2, 0, 1, 0, 2]
    assert keys.keys_of([]) == ([], [])


def test_keys_of__at_most_64_accounts(keys, provider):
    keys.set_encryption_key(KEY_A, sender=provider)
    found, versions = keys.keys_of([provider.address] * 64)
    assert list(found) == [KEY_A] * 64 and list(versions) == [1] * 64
    with ape.reverts():  # the calldata's array is longer than the contract's bound
        keys.keys_of([provider.address] * 65)


def test_keys_rotate__agent_file_published__user_file_local__lost_file_made_and_published(keys, accounts, tmp_path):
    """`gpunet keys rotate` (offchain.chain.keys.rotate): an agent's or operator's key file gets
    its new key published and numbered as KeyDirectory numbers it; a user's own file (never
    published) is renewed locally, with no transaction; a missing file (the lost-key case) is
    made anew and its key published. A newcomer's run found the user's case failing after it
    had sent the transaction ("version 1 is already another key")."""
    from types import SimpleNamespace

    from offchain.chain import keys as K
    from offchain.sealing import Keyring

    h = SimpleNamespace(key_directory=keys)
    agent, user = accounts[6], accounts[7]

    ring = Keyring.create(agent.address, tmp_path / "agent.json", published=False)
    K.publish(h, agent, ring)
    first = keys.key_version(agent)
    ring, published = K.rotate(h, agent, tmp_path / "agent.json")
    assert published and keys.key_version(agent) == first + 1 == ring.current
    assert bytes(keys.encryption_key(agent)) == ring.public_key()
    assert sorted(Keyring.load(tmp_path / "agent.json").keys) == [first, first + 1]

    Keyring.create(user.address, tmp_path / "user.json")  # as `gpunet job submit` makes it
    ring, published = K.rotate(h, user, tmp_path / "user.json")
    assert not published and keys.key_version(user) == 0
    assert (ring.current, sorted(Keyring.load(tmp_path / "user.json").keys)) == (2, [1, 2])

    before = keys.key_version(agent)
    ring, published = K.rotate(h, agent, tmp_path / "lost.json")
    assert published and keys.key_version(agent) == before + 1 == ring.current
    assert bytes(keys.encryption_key(agent)) == Keyring.load(tmp_path / "lost.json").public_key()

    with pytest.raises(K.SealError, match="belongs to"):
        K.rotate(h, user, tmp_path / "agent.json")


def test_cached_recipients__answers_kept_a_while__fresh_after(keys, accounts, monkeypatch):
    """The client seals many jobs a minute to the same providers: their keys are read once per
    `OPERATORS_CACHE_S` (one RPC per sealed job was most of sealing's end-to-end cost)."""
    from types import SimpleNamespace

    from offchain.chain import keys as K

    h = SimpleNamespace(key_directory=keys)
    who = accounts[8]
    assert K.cached_recipients(h, [who.address]) == {who.address: None}
    keys.set_encryption_key(KEY_C, sender=who)
    assert K.cached_recipients(h, [who.address]) == {who.address: None}  # kept
    assert K.recipients(h, [who.address])[who.address].public_key == KEY_C  # the chain has it
    K._recipients_cache.expire(time.monotonic() + K.OPERATORS_CACHE_S)  # the time passes
    assert K.cached_recipients(h, [who.address])[who.address].public_key == KEY_C
