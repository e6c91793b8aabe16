"""The client's blob transfers with a provider's agent: `upload` (PUT) a job's spec and inputs,
`download` (GET) a blob checked against its sha256. Re-exported by `offchain.client.sdk`.

Both sign each request for the agent when given a signer (offchain/blob_auth.py), retry
connection failures and 502/503/504 (urllib3's `Retry`, `offchain.http_retry`), and wait for
an agent that says it is still starting: 503 with `"retry": true` (it has just restarted and
its job worker is not on the chain yet). That wait is a loop here, not in the shared retrying
session, because a signed header is single-use: each try is signed afresh.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from offchain.client.money import ClientError
from offchain.http_retry import retrying_session

HTTP_TIMEOUT = (5.0, 120.0)
MAX_RESULT_BYTES = 1 << 30
# How long a transfer waits on an agent that answers "not ready" (503 with "retry": true): it
# has just (re)started and is still connecting to the chain.
READY_WAIT_S = 60.0
_READY_POLL_S = 1.0


def _base(endpoint: str) -> str:
    e = endpoint.strip().rstrip("/")
    return e if "://" in e else "http://" + e


def request_signer(h: Any, account: Any) -> Any:
    """Signs blob requests to providers' agents as `account` (offchain/blob_auth.py)."""
    from offchain.blob_auth import RequestSigner

    return RequestSigner(account, int(h.chain.chain_id), str(h.registry.address))


def _says_retry(r: requests.Response) -> bool:
    try:
        return bool(r.json().get("retry"))
    except ValueError:
        return False


def _error_text(r: requests.Response) -> str:
    try:
        return str(r.json().get("error", r.text))[:300]
    except ValueError:
        return r.text[:300]


def _when_ready(send: Callable[[], requests.Response], ready_wait_s: float) -> requests.Response:
    """Calls `send` (which signs its request afresh) until the agent is past its start, or
    `ready_wait_s` has passed; returns the last response. A response that is not kept is
    closed (a streamed GET holds its connection until then)."""
    deadline = time.monotonic() + ready_wait_s
    while True:
        r = send()
        if r.status_code != 503 or not _says_retry(r) or time.monotonic() >= deadline:
            return r
        r.close()
        time.sleep(_READY_POLL_S)


def upload(
    endpoint: str,
    blobs: Mapping[str, bytes],
    *,
    session: requests.Session | None = None,
    signer: Any = None,
    provider: str | None = None,
    ready_wait_s: float = READY_WAIT_S,
) -> None:
    """PUT every blob to a provider's agent (idempotent: blobs it has are simply stored again).
    With `signer` (`request_signer`), each request is signed for `provider`'s agent. An agent
    still starting is waited for up to `ready_wait_s`."""
    s = session or retrying_session()
    base = _base(endpoint)
    for h, data in blobs.items():

        def put(h: str = h, data: bytes = data) -> requests.Response:
            headers = signer.headers(provider, "PUT", h) if signer is not None and provider else None
            return s.put(f"{base}/blobs/{h}", data=data, timeout=HTTP_TIMEOUT, headers=headers)

        try:
            r = _when_ready(put, ready_wait_s)
        except requests.RequestException as e:
            raise ClientError(
                f"provider unreachable at {base} ({type(e).__name__}): is its agent running? "
                "Choose another provider with --provider ADDR, or retry later"
            ) from None
        if r.status_code == 413:
            raise ClientError(f"{base} refuses a blob of {len(data)} bytes: {_error_text(r)}")
        if r.status_code in (401, 403):
            raise ClientError(f"{base} refuses the upload of {h}: {_error_text(r)}")
        if r.status_code not in (200, 201):
            raise ClientError(f"upload of {h} to {base} failed: HTTP {r.status_code}: {_error_text(r)}")


def download(
    uri: str,
    expected_hex: str,
    max_bytes: int = MAX_RESULT_BYTES,
    auth: Any = None,
    *,
    ready_wait_s: float = READY_WAIT_S,
) -> bytes:
    """GET `uri`, refusing anything that does not hash to `expected_hex`. `auth`: (signer,
    provider) to sign the request for the provider's agent (offchain/blob_auth.py). An agent
    still starting is waited for up to `ready_wait_s`."""
    s = retrying_session()

    def get() -> requests.Response:
        headers = auth[0].headers(auth[1], "GET", expected_hex) if auth else None
        return s.get(uri, timeout=HTTP_TIMEOUT, stream=True, headers=headers)

    try:
        with _when_ready(get, ready_wait_s) as r:
            if r.status_code in (401, 403) and auth is None:
                raise ClientError(
                    f"{uri} serves blobs only to the job's user, its provider and the auditors: sign as the user "
                    f"(--account ALIAS or --test-account N): HTTP {r.status_code}: {_error_text(r)}"
                )
            if r.status_code != 200:
                raise ClientError(f"result not served at {uri}: HTTP {r.status_code}: {_error_text(r)}")
            buf = io.BytesIO()
            for chunk in r.iter_content(1 << 20):
                buf.write(chunk)
                if buf.tell() > max_bytes:
                    raise ClientError(f"result at {uri} is over {max_bytes} bytes")
    except requests.RequestException as e:
        raise ClientError(f"provider unreachable at {uri} ({type(e).__name__}); retry later") from None
    data = buf.getvalue()
    got = hashlib.sha256(data).hexdigest()
    if got != expected_hex:
        raise ClientError(
            f"the bytes served at {uri} hash to {got}, not the on-chain result hash {expected_hex}: "
            "the provider is serving something else (withheld output); consider `gpunet job dispute`"
        )
    return data
