"""Signed blob requests: who asks a provider's agent for a blob, proven by the account's key.

Every `PUT`, `GET` or `HEAD /blobs/<hash>` to an agent that enforces access (`gpunet provider
serve` does) carries one header::

    X-Gpunet-Auth: <address>:<expiry unix seconds>:<nonce, 32 hex>:<signature, 0x + 130 hex>

The signature is EIP-712 (eth-account's `sign_typed_data`), so a wallet shows what it signs:

    domain  {name: "gpunet blob access", version: "1", chainId, verifyingContract: ProviderRegistry}
    BlobAccess {method: string, blob: bytes32, provider: address, expiry: uint64, nonce: uint128}

Bound to the chain, the deployment, the agent's provider (a request for one agent cannot be
replayed at another), the method and the blob; the expiry is at most `MAX_VALIDITY_S` ahead and
the agent keeps each (address, nonce) until it expires, so a request cannot be replayed either.
"""

from __future__ import annotations

import heapq
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

from offchain.chain.reports import typed_data

HEADER = "X-Gpunet-Auth"
DOMAIN_NAME = "gpunet blob access"
MAX_VALIDITY_S = 600
DEFAULT_VALIDITY_S = 120
CLOCK_SKEW_S = 120  # how far the agent's clock may be from the signer's (both ways)
FIELDS = (
    ("method", "string"),
    ("blob", "bytes32"),
    ("provider", "address"),
    ("expiry", "uint64"),
    ("nonce", "uint128"),
)


class AuthError(ValueError):
    """A request's signature is missing, malformed, expired, replayed or not the signer's;
    `status` is the HTTP status the agent answers with."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Domain:
    chain_id: int
    registry: str  # ProviderRegistry's address: the deployment
    provider: str  # the agent's provider account


def _message(domain: Domain, method: str, blob: str, expiry: int, nonce: int) -> object:
    # The project's one EIP-712 builder (offchain/chain/reports.py), under the blob-access domain.
    request = {"method": method.upper(), "blob": blob, "provider": domain.provider, "expiry": expiry, "nonce": nonce}
    return encode_typed_data(full_message=typed_data("BlobAccess", FIELDS, domain.registry, domain.chain_id, request,
                                                     DOMAIN_NAME))  # fmt: skip


class RequestSigner:
    """Signs blob requests as one account for one deployment: `headers(provider, method, blob)`.
    `account`: a private key (hex or bytes), an eth-account LocalAccount, or an ape account (a
    keystore or hardware wallet signs the EIP-712 message itself)."""

    def __init__(self, account: Any, chain_id: int, registry: str):
        self.chain_id, self.registry = int(chain_id), str(registry)
        key = account if isinstance(account, (str, bytes)) else getattr(account, "private_key", None)
        if key is not None:
            local = Account.from_key(key)
            self.address = local.address
            self._sign = lambda msg: bytes(local.sign_message(msg).signature)
        else:
            self.address = str(account.address)
            self._sign = lambda msg: bytes(account.sign_message(msg).encode_rsv())

    def headers(self, provider: str, method: str, blob: str, validity_s: int = DEFAULT_VALIDITY_S) -> dict[str, str]:
        expiry = int(time.time()) + validity_s
        nonce = secrets.randbits(128)
        domain = Domain(self.chain_id, self.registry, provider)
        signature = self._sign(_message(domain, method, blob, expiry, nonce))
        return {HEADER: f"{self.address}:{expiry}:{nonce:032x}:0x{signature.hex()}"}


class Verifier:
    """Checks headers for one agent; remembers nonces until their expiry (in memory: a restart
    forgets them, so expiries are short)."""

    def __init__(self, domain: Domain, clock=time.time):
        self.domain = domain
        self._clock = clock
        self._seen: dict[tuple[str, int], int] = {}
        # (forget at, key) in time order: each request drops the expired ones in O(log n) each.
        # A scan of the whole set per request made a flood of validly signed requests (any key
        # will do) cost every later request milliseconds under the lock (an attacker's review).
        self._expiring: list[tuple[int, tuple[str, int]]] = []
        self._lock = threading.Lock()  # requests are checked on several threads at once

    def verify(self, header: str | None, method: str, blob: str) -> str:
        """The signer's checksummed address, or AuthError saying what is wrong."""
        if not header:
            raise AuthError(
                f"this agent serves blobs only to signed requests: send an {HEADER} header "
                "(gpunet and its SDK sign with your account; see offchain/blob_auth.py)"
            )
        try:
            address, expiry_s, nonce_s, sig = header.strip().split(":")
            expiry, nonce = int(expiry_s), int(nonce_s, 16)
            signature = bytes.fromhex(sig.removeprefix("0x"))
        except ValueError:
            raise AuthError(f"malformed {HEADER}: expected <address>:<expiry>:<nonce hex>:<signature hex>") from None
        now = int(self._clock())
        if expiry < now - CLOCK_SKEW_S:
            raise AuthError(f"{HEADER} expired {now - expiry} s ago: sign the request again")
        if expiry > now + MAX_VALIDITY_S + CLOCK_SKEW_S:
            raise AuthError(f"{HEADER} expiry is more than {MAX_VALIDITY_S} s ahead")
        try:
            signer = Account.recover_message(_message(self.domain, method, blob, expiry, nonce), signature=signature)
        except Exception:  # noqa: BLE001 - any malformed signature
            raise AuthError(f"{HEADER}: the signature does not parse") from None
        if signer.lower() != address.lower():
            raise AuthError(
                f"{HEADER}: signed by {signer}, not {address} (wrong chain, deployment, provider, method or blob?)"
            )
        with self._lock:
            while self._expiring and self._expiring[0][0] < now:
                del self._seen[heapq.heappop(self._expiring)[1]]
            if (signer, nonce) in self._seen:
                raise AuthError(f"{HEADER}: this signed request was already used (replay): sign a new one")
            self._seen[(signer, nonce)] = expiry + CLOCK_SKEW_S
            heapq.heappush(self._expiring, (expiry + CLOCK_SKEW_S, (signer, nonce)))
        return signer
