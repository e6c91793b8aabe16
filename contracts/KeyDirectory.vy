# pragma version ~=0.4.3
"""
@title Encryption key directory: each account's X25519 public key for sealed job data
@custom:contract-name KeyDirectory
@license AGPL-3.0-only
@notice Any account publishes the X25519 public key (32 bytes) that job data sealed
        to it is encrypted to, end to end: a user seals a job's inputs to its
        provider and the oracle operators, who read their keys here (`keys_of`,
        one call for all of them).

        Each publication is a rotation: `key_version` counts an account's
        publications (1, 2, 3, ...; 0 = never published) and a sealed payload
        names the version it was sealed to. `first_published_at` is the time of
        the first publication and is kept on rotation.
@custom:security No roles, no admin, no funds. The binding between a key and an
        on-chain identity is msg.sender: an account writes only its own entry
        and nobody (not the deployer, not governance) can write, replace or
        delete another account's key. A key cannot be unpublished, only
        replaced by a newer one.
"""

################################################################
#                          CONSTANTS                           #
################################################################

# Most accounts `keys_of` answers for in one call.
MAX_BATCH: constant(uint256) = 64

################################################################
#                            STATE                             #
################################################################

# account -> its current X25519 public key (empty: never published).
encryption_key: public(HashMap[address, bytes32])
# account -> how many times it published a key (its current key's version; 0: never).
key_version: public(HashMap[address, uint64])
# account -> block.timestamp of its first publication (0: never published).
first_published_at: public(HashMap[address, uint256])

################################################################
#                            EVENTS                            #
################################################################

event EncryptionKeySet:
    account: indexed(address)
    key: bytes32
    version: uint64


@external
def set_encryption_key(key: bytes32):
    """
    @notice Publishes `key` as msg.sender's X25519 public key (a rotation if it had one):
            its version becomes the previous one plus 1. Only the caller's own entry is
            written: the key is bound to the account that sent the transaction.
    @param key The 32-byte X25519 public key; not empty, and not the caller's current key.
    """
    assert key != empty(bytes32), "key_directory: empty key"
    assert key != self.encryption_key[msg.sender], "key_directory: key unchanged"
    version: uint64 = self.key_version[msg.sender] + 1
    if version == 1:
        self.first_published_at[msg.sender] = block.timestamp
    self.encryption_key[msg.sender] = key
    self.key_version[msg.sender] = version
    log EncryptionKeySet(account=msg.sender, key=key, version=version)


@external
@view
def keys_of(accounts: DynArray[address, MAX_BATCH]) -> (DynArray[bytes32, MAX_BATCH], DynArray[uint64, MAX_BATCH]):
    """
    @notice The current keys and versions of `accounts`, in the order asked (an account
            that never published gives an empty key and version 0).
    @param accounts At most MAX_BATCH accounts.
    @return (keys, versions), one of each per account.
    """
    keys: DynArray[bytes32, MAX_BATCH] = []
    versions: DynArray[uint64, MAX_BATCH] = []
    for a: address in accounts:
        keys.append(self.encryption_key[a])
        versions.append(self.key_version[a])
    return keys, versions
