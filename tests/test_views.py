"""`offchain.chain.views.read_many`: several views in one JSON-RPC batch request, decoded by
ape's codec exactly as ape's own calls; one by one where the node has no batch requests."""

from types import SimpleNamespace

import pytest

from offchain.chain.views import read_many


def test_read_many__same_answers_as_ape_calls__one_by_one_in_process(chain, token, registry, user, provider):
    calls = [(token.balanceOf, (user,)), (token.totalSupply, ()), (registry.reputation, (provider,)), (token.name, ())]
    assert read_many(chain.provider, calls) == [h(*a) for h, a in calls]
    assert read_many(chain.provider, []) == []


@pytest.mark.anvil
def test_read_many__one_batch_request_on_a_real_node__structs_and_strings_decoded(project, accounts, tmp_path):
    from ape.contracts import ContractInstance
    from web3 import Web3

    from offchain.chain.anvil import running_anvil

    ct = project.ComputeToken.contract_type
    abi = [a.model_dump(mode="json", by_alias=True) for a in ct.abi]
    with running_anvil(log_path=tmp_path / "anvil.log") as url:
        w3 = Web3(Web3.HTTPProvider(url))
        owner, holder = w3.eth.accounts[0], w3.eth.accounts[1]
        factory = w3.eth.contract(abi=abi, bytecode=ct.deployment_bytecode.bytecode)
        addr = w3.eth.wait_for_transaction_receipt(
            factory.constructor("Compute", "GPU", "Compute", "1").transact({"from": owner})
        ).contractAddress
        w3c = w3.eth.contract(address=addr, abi=abi)
        w3.eth.wait_for_transaction_receipt(w3c.functions.mint(holder, 12345).transact({"from": owner}))
        tok = ContractInstance(addr, ct)  # ape's codec; the node is this anvil, not ape's
        single, batches = [], []
        one, many = w3.provider.make_request, w3.provider.make_batch_request
        w3.provider.make_request = lambda m, p: (single.append(m), one(m, p))[1]
        w3.provider.make_batch_request = lambda reqs: (batches.append(len(reqs)), many(reqs))[1]
        got = read_many(
            SimpleNamespace(web3=w3),
            [(tok.balanceOf, (holder,)), (tok.totalSupply, ()), (tok.name, ()), (tok.is_minter, (owner,))],
        )
        assert got == [12345, 12345, "Compute", True]
        assert batches == [4] and single == []  # one round trip for the four
