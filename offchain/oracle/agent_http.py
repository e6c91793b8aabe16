"""How an oracle operator talks to a provider agent over HTTP: one call, its failure classes, and
the provider-supplied values made safe for a transcript. Used by `challenger` (hardware
challenges) and the service's uptime probes; pure plumbing, no protocol decisions.

Failure classes (the challenger maps them to outcomes):
- `Unreachable`: connection refused/reset, a connect timeout, a 5xx;
- `Busy`: HTTP 429 (the agent computes another operator's challenge or runs a job);
- `Misreport`: any other non-200 (the agent refused), or a malformed reply.
A read timeout is left to the caller: a timed challenge round reads it as "over the fail line",
an untimed transfer as unreachable (`request`).
"""

from __future__ import annotations

import random
import time
from typing import Any

import requests

DEFAULT_CONNECT_TIMEOUT_S = 5.0


class Unreachable(Exception):
    pass


class Busy(Exception):
    """HTTP 429: the agent is computing another operator's challenge or a job; retry, untimed."""


class Misreport(Exception):
    pass


def base_url(endpoint: str) -> str:
    """'host:port' or 'http(s)://host:port[/prefix]' -> a base URL without a trailing slash."""
    e = endpoint.strip()
    if "://" not in e:
        e = "http://" + e
    return e.rstrip("/")


def error_text(r: requests.Response) -> str:
    try:
        msg = r.json().get("error")
    except (ValueError, AttributeError):
        msg = None
    return str(msg) if msg else (r.text[:200] or r.reason or "")


def send(
    session: requests.Session, method: str, url: str, *, what: str, timeout: tuple[float, float], **kw: Any
) -> requests.Response:
    """One HTTP call: connection errors and 5xx -> Unreachable, 429 -> Busy, other non-200 ->
    Misreport; a read timeout propagates as requests.ReadTimeout."""
    try:
        r = session.request(method, url, timeout=timeout, **kw)
    except requests.ReadTimeout:
        raise
    except requests.RequestException as e:
        raise Unreachable(f"{what}: {type(e).__name__}: {str(e)[:200]}") from None
    if r.status_code == 429:
        raise Busy(f"{what}: busy ({error_text(r)})")
    if r.status_code >= 500:
        raise Unreachable(f"{what}: HTTP {r.status_code}: {error_text(r)}")
    if r.status_code != 200:
        raise Misreport(f"{what}: provider refused (HTTP {r.status_code}): {error_text(r)}")
    return r


def request(
    session: requests.Session, method: str, url: str, *, what: str, timeout: tuple[float, float], **kw: Any
) -> requests.Response:
    """`send`, with a read timeout read as Unreachable (untimed calls)."""
    try:
        return send(session, method, url, what=what, timeout=timeout, **kw)
    except requests.ReadTimeout as e:
        raise Unreachable(f"{what}: timed out ({type(e).__name__})") from None


def request_when_free(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    timeout: tuple[float, float],
    busy_wait_s: float,
    **kw: Any,
) -> tuple[requests.Response, float]:
    """`send`, retried with random back-off while the agent answers 429, for at most
    `busy_wait_s`; then Busy. Returns the response and the seconds the successful attempt took
    (only that attempt is timed)."""
    deadline = time.monotonic() + busy_wait_s
    while True:
        t0 = time.monotonic()
        try:
            r = send(session, method, url, what=what, timeout=timeout, **kw)
            return r, time.monotonic() - t0
        except Busy as e:
            if time.monotonic() > deadline:
                raise Busy(f"{what}: agent busy for {busy_wait_s:.0f}s ({e})") from None
            time.sleep(random.uniform(0.2, 1.0))


def json_obj(r: requests.Response, what: str, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        raise Misreport(f"{what}: reply is not JSON") from None
    if not isinstance(body, dict) or any(k not in body for k in keys):
        raise Misreport(f"{what}: reply lacks {', '.join(keys)}")
    return body


def plain(v: Any) -> str | int | float | bool | None:
    """A provider-supplied scalar made safe for the canonical JSON (no NaN, no nesting)."""
    if v is None or isinstance(v, bool | int | str):
        return v if not isinstance(v, str) else v[:200]
    if isinstance(v, float):
        return v if v == v and abs(v) != float("inf") else None
    return str(v)[:200]


def seconds(v: Any) -> float:
    """A provider-reported duration as a sane float (0 when absent or nonsense)."""
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1e6 else 0.0


def probe_uptime(endpoint: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> bool:
    """GET /health answers 200 with {"ok": true} within `timeout` seconds."""
    try:
        r = requests.get(base_url(endpoint) + "/health", timeout=timeout)
        return r.status_code == 200 and r.json().get("ok") is True
    except (requests.RequestException, ValueError, AttributeError):
        return False
