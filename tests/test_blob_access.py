"""Who may put and get which blob at a provider's agent (offchain/provider/blob_access.py, with
signed requests from offchain/blob_auth.py): over the real agent HTTP server, and the quota and
garbage-collection rules on the store with a test clock. No chain: the worker's part (the
operator set, linking a job's blobs to its user, marking jobs final) is called directly."""

from __future__ import annotations

import hashlib

import pytest
import requests
from eth_account import Account

from offchain.blob_auth import CLOCK_SKEW_S, HEADER, AuthError, Domain, RequestSigner, Verifier
from offchain.provider.agent import AgentConfig, serve
from offchain.provider.blob_access import BlobAccess
from offchain.provider.blobs import BlobStore

CHAIN, REGISTRY = 31337, "0x" + "ab" * 20
PROVIDER, USER, OPERATOR, STRANGER = (Account.create() for _ in range(4))


def _signer(acct, chain=CHAIN, registry=REGISTRY):
    return RequestSigner(acct.key.hex(), chain, registry)


class Clock:
    def __init__(self):
        self.t = 1_000_000.0

    def __call__(self):
        return self.t


@pytest.fixture
def agent(tmp_path):
    """An agent enforcing access, as the job worker sets it up (operators: OPERATOR)."""
    server, thread = serve(AgentConfig(provider=PROVIDER.address, port=0, device="cpu", blob_auth=True,
                                       blob_dir=str(tmp_path / "blobs"), blob_quota_bytes=10_000))  # fmt: skip
    url = server.url
    before = requests.get(f"{url}/blobs/{'00' * 32}", timeout=5)
    assert before.status_code == 503 and "connecting to the chain" in before.json()["error"]
    access = BlobAccess(server.agent.blobs, Verifier(Domain(CHAIN, REGISTRY, PROVIDER.address)), quota_bytes=10_000)
    access.operators = {OPERATOR.address.lower()}
    server.agent.access = access
    yield url, access
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _put(url, acct, data, **kw):
    h = hashlib.sha256(data).hexdigest()
    headers = _signer(acct, **kw).headers(PROVIDER.address, "PUT", h) if acct else {}
    return h, requests.put(f"{url}/blobs/{h}", data=data, headers=headers, timeout=5)


def _get(url, acct, h, method="GET", **kw):
    headers = _signer(acct, **kw).headers(PROVIDER.address, method, h) if acct else {}
    return requests.request(method, f"{url}/blobs/{h}", headers=headers, timeout=5)


def test_readers__uploader_provider_operator_and_job_user__nobody_else(agent):
    url, access = agent
    h, r = _put(url, USER, b"sealed spec bytes")
    assert r.status_code == 201
    for who in (USER, PROVIDER, OPERATOR):
        got = _get(url, who, h)
        assert got.status_code == 200 and got.content == b"sealed spec bytes"
        assert "private" in got.headers["Cache-Control"]
    assert _get(url, USER, h, "HEAD").status_code == 200
    refused = _get(url, STRANGER, h)
    assert refused.status_code == 403 and "may not read blob" in refused.json()["error"]
    # An outsider holding the hash learns nothing, not even whether the blob exists:
    assert _get(url, STRANGER, "cd" * 32).status_code == 403
    # The worker links a job's output to the job's user: then the user may read it.
    out, r = _put(url, PROVIDER, b"sealed output")
    assert _get(url, STRANGER, out).status_code == 403 and _get(url, USER, out).status_code == 403
    access.link_job(7, [out], USER.address)
    assert _get(url, USER, out).status_code == 200


def test_refusals__unsigned_wrong_domain_expired_replayed__one_line_each(agent):
    url, access = agent
    h, _ = _put(url, USER, b"x")
    r = _get(url, None, h)
    assert r.status_code == 401 and HEADER in r.json()["error"]
    for kw in ({"chain": 1}, {"registry": "0x" + "cd" * 20}):  # signed for another chain / deployment
        r = _get(url, USER, h, **kw)
        assert r.status_code == 401 and "wrong chain, deployment" in r.json()["error"]
    headers = _signer(USER).headers(PROVIDER.address, "GET", h)
    assert requests.get(f"{url}/blobs/{h}", headers=headers, timeout=5).status_code == 200
    replay = requests.get(f"{url}/blobs/{h}", headers=headers, timeout=5)
    assert replay.status_code == 401 and "replay" in replay.json()["error"]
    other = _signer(USER).headers("0x" + "99" * 20, "GET", h)  # signed for another provider's agent
    assert requests.get(f"{url}/blobs/{h}", headers=other, timeout=5).status_code == 401
    wrong_blob = _signer(USER).headers(PROVIDER.address, "GET", "ee" * 32)
    assert requests.get(f"{url}/blobs/{h}", headers=wrong_blob, timeout=5).status_code == 401
    old = _signer(USER).headers(PROVIDER.address, "GET", h, validity_s=-CLOCK_SKEW_S - 5)  # past the skew allowed
    r = requests.get(f"{url}/blobs/{h}", headers=old, timeout=5)
    assert r.status_code == 401 and "expired" in r.json()["error"]
    skewed = _signer(USER).headers(PROVIDER.address, "GET", h, validity_s=-5)  # a signer's clock a little behind
    assert requests.get(f"{url}/blobs/{h}", headers=skewed, timeout=5).status_code == 200
    far = _signer(USER).headers(PROVIDER.address, "GET", h, validity_s=3600)
    assert "ahead" in requests.get(f"{url}/blobs/{h}", headers=far, timeout=5).json()["error"]
    r = requests.get(f"{url}/blobs/{h}", headers={HEADER: "garbage"}, timeout=5)
    assert r.status_code == 401 and "malformed" in r.json()["error"]


def test_quota__per_account__reuploads_free__other_accounts_unaffected(agent):
    url, _ = agent
    _, r = _put(url, USER, b"a" * 6_000)
    assert r.status_code == 201
    _, r = _put(url, USER, b"a" * 6_000)  # the same bytes again: no quota cost
    assert r.status_code == 200
    _, r = _put(url, USER, b"b" * 5_000)
    assert r.status_code == 413 and "quota of 10000 bytes" in r.json()["error"]
    _, r = _put(url, STRANGER, b"b" * 5_000)
    assert r.status_code == 201
    h, r = _put(url, None, b"c")
    assert r.status_code == 401  # an unsigned upload stores nothing
    assert _get(url, PROVIDER, h).status_code == 404


def test_quota__uploads_under_way_count__a_burst_of_puts_cannot_pass_it_together(agent):
    """Concurrent PUTs of one account each passed the quota check before any was recorded (an
    attacker's review): bytes still streaming now count until the upload ends, stored or not."""
    url, access = agent

    def header(data):
        return _signer(USER).headers(PROVIDER.address, "PUT", hashlib.sha256(data).hexdigest())[HEADER]

    first, second = b"d" * 6_000, b"e" * 6_000
    h1 = hashlib.sha256(first).hexdigest()
    assert access.check_put(header(first), h1, len(first)) == USER.address.lower()
    with pytest.raises(AuthError, match="uploads under way included"):  # while the first streams
        access.check_put(header(second), hashlib.sha256(second).hexdigest(), len(second))
    access.end_put(USER.address.lower(), h1, len(first), stored=False)  # it failed: nothing kept
    _, r = _put(url, USER, second)
    assert r.status_code == 201 and access._reserved == {}
    # Storing an existing blob again reserves nothing, however many times at once.
    h2 = hashlib.sha256(second).hexdigest()
    for _ in range(3):
        access.check_put(header(second), h2, len(second))
    assert access._streaming(USER.address.lower()) == 0
    for _ in range(3):
        access.end_put(USER.address.lower(), h2, len(second), stored=True)
    assert access._streaming(USER.address.lower()) == 0 and access._reserved == {}


def test_operator_added_since_the_set_was_read__checked_live(agent):
    url, access = agent
    h, _ = _put(url, USER, b"y")
    asked = []
    access.is_operator = lambda a: asked.append(a) or a == STRANGER.address.lower()
    assert _get(url, STRANGER, h).status_code == 200
    assert _get(url, STRANGER, h).status_code == 200
    assert asked == [STRANGER.address.lower()]  # remembered for a while, not asked per request


def test_garbage_collection__after_retention__shared_blobs_wait_for_every_job(tmp_path):
    clock = Clock()
    store = BlobStore(tmp_path / "blobs")
    access = BlobAccess(store, Verifier(Domain(CHAIN, REGISTRY, PROVIDER.address), clock=clock),
                        retention_s=100, orphan_ttl_s=1_000, clock=clock)  # fmt: skip
    shared, only_a, orphan = (store.put(b) for b in (b"model", b"spec a", b"never used"))
    for h in (shared, only_a, orphan):
        access.record_put(USER.address, h, 5)
    access.link_job(1, [shared, only_a], USER.address)
    access.link_job(2, [shared], USER.address)
    access.job_final(1)
    clock.t += 101
    assert access.collect() == [only_a]  # job 2 still needs the shared model
    assert store.has(shared) and not store.has(only_a)
    access.job_final(2)
    clock.t += 50
    assert access.collect() == []  # retention runs from job 2's end
    clock.t += 60
    assert access.collect() == [shared]
    clock.t += 1_000
    assert access.collect() == [orphan] and len(store) == 0
    # Gone from the books too: the quota is free again.
    assert access.meta.read_one("SELECT COUNT(*) FROM blob")[0] == 0


def test_verifier__signature_by_a_keystore_like_account():
    """An ape account without a raw key signs the EIP-712 message itself (`encode_rsv`)."""

    class ApeLike:
        address = USER.address

        def sign_message(self, msg):
            sig = Account.sign_message(msg, USER.key)

            class S:
                def encode_rsv(self_inner):
                    return bytes(sig.signature)

            return S()

    headers = RequestSigner(ApeLike(), CHAIN, REGISTRY).headers(PROVIDER.address, "GET", "ab" * 32)
    v = Verifier(Domain(CHAIN, REGISTRY, PROVIDER.address))
    assert v.verify(headers[HEADER], "GET", "ab" * 32) == USER.address
    with pytest.raises(AuthError, match="replay"):
        v.verify(headers[HEADER], "GET", "ab" * 32)


def test_attack_sealed_input_that_does_not_hash_to_its_name__provider_refuses(tmp_path):
    """A user seals an input whose plaintext is not the content its spec names: the provider
    would accept, fail at execution and pay the no-show penalty (review finding). Opening it
    for the workload checks the hash, so the intake refuses the job instead."""
    from offchain import sealing as S

    store = BlobStore(tmp_path / "blobs")
    key = S.new_data_key()
    addr = store.put(S.seal_data(b"not the model", key))
    view = store.mapping(key, {"ab" * 32: addr})
    assert "ab" * 32 in view
    with pytest.raises(S.SealError, match="does not open to the content"):
        view["ab" * 32]
    good = store.put(S.seal_data(b"the model", key))
    right = hashlib.sha256(b"the model").hexdigest()
    assert store.mapping(key, {right: good})[right] == b"the model"


def test_upload_while_the_agent_is_starting__client_waits_for_it__or_says_it_is_not_ready(tmp_path):
    """An agent answers before its job worker is on the chain (a restart): /health says
    "starting" and uploads get 503 "retry"; the SDK waits for it (signing each try afresh) and
    gives up after its wait with the agent's reason."""
    import threading

    from offchain.client import sdk

    server, thread = serve(AgentConfig(provider=PROVIDER.address, port=0, device="cpu", blob_auth=True,
                                       blob_dir=str(tmp_path / "blobs"), blob_quota_bytes=10_000))  # fmt: skip
    url = server.url
    try:
        assert requests.get(f"{url}/health", timeout=5).json()["blob_access"] == "starting"
        data = b"uploaded while starting"
        blobs = {hashlib.sha256(data).hexdigest(): data}
        with pytest.raises(sdk.ClientError, match="HTTP 503: blob access is not ready"):
            sdk.upload(url, blobs, signer=_signer(USER), provider=PROVIDER.address, ready_wait_s=0)

        access = BlobAccess(server.agent.blobs, Verifier(Domain(CHAIN, REGISTRY, PROVIDER.address)), quota_bytes=10_000)
        attach = threading.Timer(2.0, lambda: setattr(server.agent, "access", access))
        attach.start()
        sdk.upload(url, blobs, signer=_signer(USER), provider=PROVIDER.address, ready_wait_s=60)
        attach.join()
        assert requests.get(f"{url}/health", timeout=5).json()["blob_access"] == "signed"
        (h,) = blobs
        assert _get(url, USER, h).content == data
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_while_the_agent_is_starting__client_waits_for_it__or_says_it_is_not_ready(tmp_path):
    """The same for a GET (a result download or an audit's fetch right after the provider's
    agent restarted): the client waits through the 503 "retry", signing each try afresh, and
    says why after its wait."""
    import threading

    from offchain.client import sdk

    server, thread = serve(AgentConfig(provider=PROVIDER.address, port=0, device="cpu", blob_auth=True,
                                       blob_dir=str(tmp_path / "blobs"), blob_quota_bytes=10_000))  # fmt: skip
    try:
        data = b"a result served after a restart"
        h = server.agent.blobs.put(data)
        uri, auth = f"{server.url}/blobs/{h}", (_signer(USER), PROVIDER.address)
        with pytest.raises(sdk.ClientError, match="HTTP 503: blob access is not ready"):
            sdk.download(uri, h, auth=auth, ready_wait_s=0)

        access = BlobAccess(server.agent.blobs, Verifier(Domain(CHAIN, REGISTRY, PROVIDER.address)), quota_bytes=10_000)
        access.link_job(7, [h], USER.address)
        attach = threading.Timer(2.0, lambda: setattr(server.agent, "access", access))
        attach.start()
        assert sdk.download(uri, h, auth=auth, ready_wait_s=60) == data
        attach.join()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_verifier__seen_nonces_are_forgotten_as_they_expire__replays_still_refused():
    """Nonces are kept until their request expires, in expiry order: each check drops only the
    expired ones (a scan of the whole set per request let a flood of signed requests slow every
    later one under the lock; an attacker's review)."""
    import time

    now = [time.time()]  # the signer stamps expiries from the wall clock; the agent's clock is moved here
    verifier = Verifier(Domain(CHAIN, REGISTRY, PROVIDER.address), clock=lambda: now[0])
    signer = RequestSigner(USER.key.hex(), CHAIN, REGISTRY)
    blob = "ab" * 32
    early = [signer.headers(PROVIDER.address, "GET", blob, validity_s=60)[HEADER] for _ in range(50)]
    late = signer.headers(PROVIDER.address, "GET", blob, validity_s=300)[HEADER]
    for header in [*early, late]:
        verifier.verify(header, "GET", blob)
    assert len(verifier._seen) == 51
    now[0] += 60 + CLOCK_SKEW_S + 1  # the early ones expired; the late one has not
    verifier.verify(signer.headers(PROVIDER.address, "GET", blob, validity_s=300)[HEADER], "GET", blob)
    assert len(verifier._seen) == 2
    with pytest.raises(AuthError, match="replay"):
        verifier.verify(late, "GET", blob)
