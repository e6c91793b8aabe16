"""HTTP sessions that retry what is safe to retry, with urllib3's `Retry` (through requests).

gpunet's HTTP calls go to providers' agents and to peer operators, over the open internet: a
connection refused or reset while an agent restarts, or a 502/503 from a proxy in front of it,
is worth a few quick retries before the caller reports the peer unreachable. Only idempotent
calls are retried: GET and PUT of content-addressed blobs (storing a blob twice stores the same
bytes), and POST /sign/* of the oracle quorum (a peer signs at most one version per subject and
nonce and answers a repeated request with that same signature). A read timeout is not retried:
the caller's own timeout already bounds how long it waits.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# Connection errors and gateway answers: the peer (or a proxy before it) is restarting.
RETRY_STATUSES = (502, 503, 504)
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "POST"})


def retrying_session(retries: int = 3, backoff_s: float = 0.3) -> requests.Session:
    """A `requests.Session` that retries connection failures and 502/503/504 `retries` times,
    waiting `backoff_s`, then twice that, and so on (urllib3's exponential back-off)."""
    retry = Retry(
        total=retries,
        connect=retries,
        read=0,
        status=retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=IDEMPOTENT,
        backoff_factor=backoff_s,
        raise_on_status=False,  # the last answer is returned to the caller, which explains it
        respect_retry_after_header=True,
    )
    s = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


__all__ = ["RETRY_STATUSES", "retrying_session"]
