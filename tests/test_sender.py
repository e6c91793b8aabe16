"""`offchain.chain.sender.Sender`, the hot path's transactions, on the in-process chain: a
gas limit from one estimate (not the block's 30M, which let one transaction into a block),
reused for the same method and batch size; a local nonce that recovers when another sender
moves it or the node loses a transaction; the contract's reason on every failure, and nothing
sent when the estimate already shows the revert."""

import pytest

from offchain.chain.sender import GAS_MARGIN, GAS_PAD, Sender, TxFailed


def _gas_entries(s: Sender) -> dict:
    return dict(s._gas)


def test_sender__declares_the_estimate_and_reuses_it_for_the_same_shape(chain, token, user, user2):
    s = Sender.of(user, chain.provider)
    nonce = user.nonce
    est = chain.provider.web3.eth.estimate_gas(
        {"from": user.address, "to": token.address, "data": bytes(token.transfer.encode_input(user2, 5))}
    )
    r1 = s.transact(token.transfer, user2, 5)
    r2 = s.transact(token.transfer, user2, 7)
    assert r1.gas_limit == int(est * GAS_MARGIN) + GAS_PAD < 1_000_000  # never the block's gas limit
    assert r2.gas_limit == r1.gas_limit and len(_gas_entries(s)) == 1  # one estimate for both
    assert user.nonce == nonce + 2 and r2.block_number >= r1.block_number
    assert [int(lg.value) for lg in r2.decode_logs(token.Transfer)] == [7]
    assert r1.txn_hash.startswith("0x") and r1.gas_used <= r1.gas_limit


def test_sender__a_revert_shown_by_the_estimate_names_the_reason_and_sends_nothing(chain, token, user, user2):
    s = Sender.of(user, chain.provider)
    nonce, balance = user.nonce, token.balanceOf(user)
    with pytest.raises(TxFailed, match="transfer: erc20: transfer amount exceeds balance") as e:
        s.transact(token.transfer, user2, balance + 1)
    assert e.value.revert_message == "erc20: transfer amount exceeds balance"
    assert user.nonce == nonce and token.balanceOf(user) == balance


def test_sender__a_mined_revert_names_the_reason_and_the_next_one_goes_through(chain, token, user, user2):
    s = Sender.of(user, chain.provider)
    balance = token.balanceOf(user)
    token.transfer(user2, balance - 10, sender=user)  # leaves 10
    s.transact(token.transfer, user2, 10)  # estimated while the balance allowed it
    nonce = user.nonce
    # Same shape: the cached gas, no estimate, so the revert is only seen once mined.
    with pytest.raises(TxFailed, match="erc20: transfer amount exceeds balance"):
        s.transact(token.transfer, user2, 10)
    assert user.nonce == nonce + 1 and token.balanceOf(user) == 0
    token.transfer(user, 50, sender=user2)
    assert s.transact(token.transfer, user2, 10).decode_logs(token.Transfer)


def test_sender__a_nonce_moved_by_another_sender_is_read_again(chain, token, user, user2):
    s = Sender.of(user, chain.provider)
    s.transact(token.transfer, user2, 1)
    token.transfer(user2, 1, sender=user)  # ape's own path, same account: the local count is stale
    before = token.balanceOf(user2)
    s.transact(token.transfer, user2, 1)
    assert token.balanceOf(user2) == before + 1


def test_sender__out_of_gas_drops_the_cached_limit_and_the_next_one_estimates_again(chain, token, user, user2):
    s = Sender.of(user, chain.provider)
    s.transact(token.transfer, user2, 1)
    (key,) = _gas_entries(s)
    s._gas[key] = 25_000  # as if the state had moved to a much costlier path since the estimate
    with pytest.raises(TxFailed, match="out of gas at 25000"):
        s.transact(token.transfer, user2, 1)
    assert key not in s._gas
    assert s.transact(token.transfer, user2, 1).gas_limit > 25_000


@pytest.mark.anvil
def test_sender__a_gap_left_by_a_lost_transaction_is_filled_and_the_payload_runs_once(chain, user, user2, tmp_path):
    """On a real anvil (1 s blocks): the local nonce is one ahead, as after a node restart that
    lost the transaction before. Ours waits behind the gap, which is filled with an empty
    transfer; the payload (1 wei) arrives exactly once."""
    from types import SimpleNamespace

    from web3 import Web3

    from offchain.chain.anvil import running_anvil

    with running_anvil(log_path=tmp_path / "anvil.log") as url:
        w3 = Web3(Web3.HTTPProvider(url))
        w3.provider.make_request("evm_setIntervalMining", [1])
        node = SimpleNamespace(web3=w3, chain_id=w3.eth.chain_id, network=chain.provider.network)
        s = Sender(user, node, poll_s=0.2)
        s.stuck_after_s = 2.0
        nonce, before = w3.eth.get_transaction_count(user.address), w3.eth.get_balance(user2.address)
        s._nonce = nonce + 1
        with s.lock:
            receipt, _ = s._send_and_wait(user2.address, b"", 21_000, 1)
        assert receipt["status"] == 1
        assert w3.eth.get_balance(user2.address) == before + 1
        assert w3.eth.get_transaction_count(user.address) == nonce + 2


@pytest.mark.anvil
def test_sender__a_transaction_priced_out_by_the_base_fee_is_replaced_and_runs_once(chain, user, user2, tmp_path):
    """On a real anvil: the transaction waits in the pool while the next block's base fee jumps to
    four times its max fee. It is replaced (same nonce, fees read again) and the replacement is
    mined; the payload (1 wei) arrives exactly once and the nonce moves by one."""
    import threading
    from types import SimpleNamespace

    from web3 import Web3

    from offchain.chain.anvil import running_anvil

    with running_anvil(log_path=tmp_path / "anvil.log") as url:
        w3 = Web3(Web3.HTTPProvider(url))
        w3.provider.make_request("evm_setAutomine", [False])  # nothing mined until we say
        node = SimpleNamespace(web3=w3, chain_id=w3.eth.chain_id, network=chain.provider.network)
        s = Sender(user, node, poll_s=0.2)
        s.stuck_after_s = 2.0
        sent: list[str] = []
        send = s._sign_and_send

        def recording_send(*args, **kwargs):  # the real send; only the hashes are noted
            out = send(*args, **kwargs)
            sent.append(out[0])
            return out

        s._sign_and_send = recording_send
        nonce, before = w3.eth.get_transaction_count(user.address), w3.eth.get_balance(user2.address)
        result: dict = {}

        def run():
            with s.lock:
                result["receipt"], result["hash"] = s._send_and_wait(user2.address, b"", 21_000, 1)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        for _ in range(100):
            if sent:
                break
            t.join(0.1)
        assert len(sent) == 1, "the first version was never sent"
        offered = s._fees_now()[0]
        w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(4 * offered)])
        w3.provider.make_request("evm_setIntervalMining", [1])
        t.join(60)
        assert not t.is_alive(), "the priced-out transaction was never replaced"
        assert len(sent) == 2 and result["hash"] == sent[1]
        assert result["receipt"]["status"] == 1
        assert w3.eth.get_balance(user2.address) == before + 1
        assert w3.eth.get_transaction_count(user.address) == nonce + 1
