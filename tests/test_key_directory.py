"""KeyDirectory: each account publishes (and rotates) its own X25519 encryption key; `keys_of`
answers for many accounts in one call. No roles: an account only ever writes its own entry."""

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
