"""ComputeToken: snekmate ERC-20 + EIP-2612 permit, owner-managed minters (until the owner
seals the minter set for good), burn / burn_from, and the total_minted / total_burned counters
(supply == minted - burned). The session deployment leaves the minters unsealed
(conftest: `seal_minters=False`) so that minters can be added here; tests/test_deploy.py checks
that deploy_all seals them by default.

Every state-changing call is checked for its state and its decoded events; every revert for
its exact message and for leaving balances, supply, allowances and roles untouched.
"""

import ape
import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

from offchain.constants import ONE_TOKEN, TOKEN_DECIMALS

ZERO = "0x" + "00" * 20
INITIAL = 100_000 * ONE_TOKEN  # what conftest mints to each funded account


def _args(log):
    return log.event_arguments


def _state(token, *accounts):
    """Everything a token call could change for `accounts`."""
    addrs = [a.address for a in accounts]
    return {
        "supply": token.totalSupply(),
        "owner": token.owner(),
        "sealed": token.minters_sealed(),
        "balances": [token.balanceOf(a) for a in addrs],
        "minters": [token.is_minter(a) for a in addrs],
        "nonces": [token.nonces(a) for a in addrs],
        "allowances": [token.allowance(a, b) for a in addrs for b in addrs],
    }


def _permit_sig(token, chain, owner, spender, value, deadline, nonce=None, signer=None):
    """An EIP-712 Permit signature by `signer` (default `owner`) with its test private key."""
    if nonce is None:
        nonce = token.nonces(owner)
    signer = signer or owner
    signed = Account.sign_typed_data(
        signer.private_key,
        domain_data={
            "name": "gpunet",
            "version": "1",
            "chainId": chain.chain_id,
            "verifyingContract": token.address,
        },
        message_types={
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ]
        },
        message_data={
            "owner": owner.address,
            "spender": spender.address,
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    )
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


@pytest.fixture
def holder(accounts):
    """A fresh account with no tokens and no allowances (conftest funds accounts 1-4 and 6)."""
    return accounts[9]


################################################################
#                     metadata and deployment                  #
################################################################


def test_metadata__deployed__matches_constructor_args(token):
    assert token.name() == "gpunet Compute"
    assert token.symbol() == "GPU"
    assert token.decimals() == TOKEN_DECIMALS == 18


def test_deployment__deployer__is_owner_and_only_minter(token, deployer, provider, user, attacker):
    assert token.owner() == deployer.address
    assert token.is_minter(deployer)
    for a in (provider, user, attacker):
        assert not token.is_minter(a)
    assert not token.minters_sealed()  # conftest deploys with seal_minters=False


def test_domain_separator__computed__matches_eip712(token, chain):
    type_hash = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    expected = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [type_hash, keccak(text="gpunet"), keccak(text="1"), chain.chain_id, token.address],
        )
    )
    assert bytes(token.DOMAIN_SEPARATOR()) == expected


################################################################
#                              mint                            #
################################################################


def test_mint__by_deployer__credits_and_raises_supply(token, deployer, holder):
    supply = token.totalSupply()
    tx = token.mint(holder, 5 * ONE_TOKEN, sender=deployer)
    assert token.balanceOf(holder) == 5 * ONE_TOKEN
    assert token.totalSupply() == supply + 5 * ONE_TOKEN
    (log,) = tx.decode_logs(token.Transfer)
    assert _args(log) == {"sender": ZERO, "receiver": holder.address, "value": 5 * ONE_TOKEN}


def test_mint__by_added_minter__works(token, deployer, keeper, holder):
    token.set_minter(keeper, True, sender=deployer)
    token.mint(holder, 7, sender=keeper)
    assert token.balanceOf(holder) == 7


@pytest.mark.parametrize("who", ["attacker", "provider", "keeper"])
def test_mint__not_minter__reverts(token, request, holder, who):
    caller = request.getfixturevalue(who)
    before = _state(token, holder, caller)
    with ape.reverts("erc20: access is denied"):
        token.mint(holder, ONE_TOKEN, sender=caller)
    assert _state(token, holder, caller) == before


def test_mint__revoked_minter__reverts(token, deployer, keeper, holder):
    token.set_minter(keeper, True, sender=deployer)
    token.set_minter(keeper, False, sender=deployer)
    with ape.reverts("erc20: access is denied"):
        token.mint(holder, 1, sender=keeper)
    assert token.balanceOf(holder) == 0


def test_mint__to_zero_address__reverts(token, deployer):
    supply = token.totalSupply()
    with ape.reverts("erc20: mint to the zero address"):
        token.mint(ZERO, 1, sender=deployer)
    assert token.totalSupply() == supply


################################################################
#                           set_minter                         #
################################################################


def test_set_minter__owner__grants_and_revokes_with_events(token, deployer, keeper):
    tx = token.set_minter(keeper, True, sender=deployer)
    assert token.is_minter(keeper)
    (log,) = tx.decode_logs(token.RoleMinterChanged)
    assert _args(log) == {"minter": keeper.address, "status": True}

    tx = token.set_minter(keeper, False, sender=deployer)
    assert not token.is_minter(keeper)
    (log,) = tx.decode_logs(token.RoleMinterChanged)
    assert _args(log) == {"minter": keeper.address, "status": False}


def test_set_minter__not_owner__reverts(token, attacker, keeper, deployer):
    before = _state(token, attacker, keeper, deployer)
    with ape.reverts("ownable: caller is not the owner"):
        token.set_minter(attacker, True, sender=attacker)
    with ape.reverts("ownable: caller is not the owner"):
        token.set_minter(deployer, False, sender=attacker)
    assert _state(token, attacker, keeper, deployer) == before


def test_set_minter__minter_but_not_owner__reverts(token, deployer, keeper, attacker):
    token.set_minter(keeper, True, sender=deployer)
    with ape.reverts("ownable: caller is not the owner"):
        token.set_minter(attacker, True, sender=keeper)
    assert not token.is_minter(attacker)


def test_set_minter__zero_address__reverts(token, deployer):
    before = _state(token, deployer)
    for status in (True, False):
        with ape.reverts("erc20: minter is the zero address"):
            token.set_minter(ZERO, status, sender=deployer)
    assert _state(token, deployer) == before
    assert not token.is_minter(ZERO)


def test_set_minter__owner_itself__reverts(token, deployer):
    before = _state(token, deployer)
    with ape.reverts("erc20: minter is owner address"):
        token.set_minter(deployer, False, sender=deployer)
    assert token.is_minter(deployer)
    assert _state(token, deployer) == before


################################################################
#                         seal_minters                         #
################################################################


def test_seal_minters__owner__seals_with_event(token, deployer, keeper):
    token.set_minter(keeper, True, sender=deployer)
    assert not token.minters_sealed()
    tx = token.seal_minters(sender=deployer)
    assert token.minters_sealed()
    (log,) = tx.decode_logs(token.MintersSealed)
    assert _args(log) == {"owner": deployer.address}
    assert not tx.decode_logs(token.RoleMinterChanged)
    # Sealing changes nobody's flag, and the minters keep minting.
    assert token.is_minter(keeper) and token.is_minter(deployer)
    token.mint(keeper, 3, sender=keeper)
    assert token.balanceOf(keeper) == 3


def test_seal_minters__then_set_minter__grant_and_revoke_revert(token, deployer, keeper, attacker, holder):
    token.set_minter(keeper, True, sender=deployer)
    token.seal_minters(sender=deployer)
    before = _state(token, deployer, keeper, attacker)
    with ape.reverts("compute_token: minters sealed"):
        token.set_minter(attacker, True, sender=deployer)  # grant
    with ape.reverts("compute_token: minters sealed"):
        token.set_minter(keeper, False, sender=deployer)  # revoke
    assert _state(token, deployer, keeper, attacker) == before
    assert token.is_minter(keeper) and not token.is_minter(attacker)
    # The ownership checks still come first: a stranger gets the owner reason.
    with ape.reverts("ownable: caller is not the owner"):
        token.set_minter(attacker, True, sender=attacker)
    token.mint(holder, 1, sender=keeper)  # the sealed minter still mints
    assert token.balanceOf(holder) == 1


def test_seal_minters__twice__reverts(token, deployer):
    token.seal_minters(sender=deployer)
    before = _state(token, deployer)
    with ape.reverts("compute_token: minters sealed"):
        token.seal_minters(sender=deployer)
    assert _state(token, deployer) == before
    assert token.minters_sealed()


@pytest.mark.parametrize("who", ["attacker", "keeper"])
def test_seal_minters__not_owner__reverts(token, request, deployer, who):
    caller = request.getfixturevalue(who)
    if who == "keeper":
        token.set_minter(caller, True, sender=deployer)  # a minter is not the owner either
    before = _state(token, caller, deployer)
    with ape.reverts("ownable: caller is not the owner"):
        token.seal_minters(sender=caller)
    assert _state(token, caller, deployer) == before
    assert not token.minters_sealed()
    # The owner can still add minters.
    token.set_minter(caller, True, sender=deployer)
    assert token.is_minter(caller)


def test_seal_minters__after_transfer_ownership__only_new_owner_seals(token, deployer, keeper):
    token.transfer_ownership(keeper, sender=deployer)
    with ape.reverts("ownable: caller is not the owner"):
        token.seal_minters(sender=deployer)
    assert not token.minters_sealed()
    token.seal_minters(sender=keeper)
    assert token.minters_sealed()


################################################################
#                        transfer / approve                    #
################################################################


def test_transfer__moves_exact_amount(token, provider, holder):
    tx = token.transfer(holder, 3 * ONE_TOKEN, sender=provider)
    assert token.balanceOf(holder) == 3 * ONE_TOKEN
    assert token.balanceOf(provider) == INITIAL - 3 * ONE_TOKEN
    (log,) = tx.decode_logs(token.Transfer)
    assert _args(log) == {"sender": provider.address, "receiver": holder.address, "value": 3 * ONE_TOKEN}


def test_transfer__exceeds_balance__reverts(token, holder, provider):
    before = _state(token, holder, provider)
    with ape.reverts("erc20: transfer amount exceeds balance"):
        token.transfer(provider, 1, sender=holder)
    assert _state(token, holder, provider) == before


def test_transfer_from__spends_allowance(token, provider, user, holder):
    token.approve(user, 10, sender=provider)
    token.transferFrom(provider, holder, 4, sender=user)
    assert token.allowance(provider, user) == 6
    assert token.balanceOf(holder) == 4
    with ape.reverts("erc20: insufficient allowance"):
        token.transferFrom(provider, holder, 7, sender=user)
    assert token.allowance(provider, user) == 6


################################################################
#                         burn / burn_from                     #
################################################################


def test_burn__own_tokens__lowers_balance_and_supply(token, provider):
    supply = token.totalSupply()
    tx = token.burn(2 * ONE_TOKEN, sender=provider)
    assert token.balanceOf(provider) == INITIAL - 2 * ONE_TOKEN
    assert token.totalSupply() == supply - 2 * ONE_TOKEN
    (log,) = tx.decode_logs(token.Transfer)
    assert _args(log) == {"sender": provider.address, "receiver": ZERO, "value": 2 * ONE_TOKEN}


def test_burn__exceeds_balance__reverts(token, provider):
    before = _state(token, provider)
    with ape.reverts("erc20: burn amount exceeds balance"):
        token.burn(INITIAL + 1, sender=provider)
    assert _state(token, provider) == before


def test_burn_from__with_allowance__burns_and_spends_allowance(token, provider, keeper):
    token.approve(keeper, 5 * ONE_TOKEN, sender=provider)
    supply = token.totalSupply()
    tx = token.burn_from(provider, 2 * ONE_TOKEN, sender=keeper)
    assert token.balanceOf(provider) == INITIAL - 2 * ONE_TOKEN
    assert token.totalSupply() == supply - 2 * ONE_TOKEN
    assert token.allowance(provider, keeper) == 3 * ONE_TOKEN
    (log,) = tx.decode_logs(token.Transfer)
    assert _args(log) == {"sender": provider.address, "receiver": ZERO, "value": 2 * ONE_TOKEN}
    (appr,) = tx.decode_logs(token.Approval)
    assert _args(appr) == {"owner": provider.address, "spender": keeper.address, "value": 3 * ONE_TOKEN}


def test_burn_from__infinite_allowance__not_spent(token, provider, keeper):
    token.approve(keeper, 2**256 - 1, sender=provider)
    token.burn_from(provider, ONE_TOKEN, sender=keeper)
    assert token.allowance(provider, keeper) == 2**256 - 1


def test_burn_from__insufficient_allowance__reverts(token, provider, keeper):
    token.approve(keeper, ONE_TOKEN, sender=provider)
    before = _state(token, provider, keeper)
    with ape.reverts("erc20: insufficient allowance"):
        token.burn_from(provider, ONE_TOKEN + 1, sender=keeper)
    assert _state(token, provider, keeper) == before


def test_burn_from__no_allowance__reverts(token, provider, attacker):
    before = _state(token, provider, attacker)
    with ape.reverts("erc20: insufficient allowance"):
        token.burn_from(provider, 1, sender=attacker)
    assert _state(token, provider, attacker) == before


################################################################
#                             permit                           #
################################################################


def test_permit__valid_signature__sets_allowance_and_bumps_nonce(token, chain, provider, keeper):
    deadline = chain.pending_timestamp + 3600
    v, r, s = _permit_sig(token, chain, provider, keeper, 42 * ONE_TOKEN, deadline)
    assert token.nonces(provider) == 0
    # Anyone (here a third party) may submit the signed permit.
    tx = token.permit(provider, keeper, 42 * ONE_TOKEN, deadline, v, r, s, sender=keeper)
    assert token.allowance(provider, keeper) == 42 * ONE_TOKEN
    assert token.nonces(provider) == 1
    (log,) = tx.decode_logs(token.Approval)
    assert _args(log) == {"owner": provider.address, "spender": keeper.address, "value": 42 * ONE_TOKEN}
    # The allowance is real: the spender can move the tokens.
    token.transferFrom(provider, keeper, 42 * ONE_TOKEN, sender=keeper)
    assert token.balanceOf(keeper) == 42 * ONE_TOKEN


def test_permit__deadline_equal_to_block_time__works(token, chain, provider, keeper):
    deadline = chain.pending_timestamp + 100
    v, r, s = _permit_sig(token, chain, provider, keeper, 1, deadline)
    chain.pending_timestamp = deadline
    tx = token.permit(provider, keeper, 1, deadline, v, r, s, sender=keeper)
    assert tx.timestamp == deadline
    assert token.allowance(provider, keeper) == 1


def test_permit__expired_deadline__reverts(token, chain, provider, keeper):
    deadline = chain.pending_timestamp + 100
    v, r, s = _permit_sig(token, chain, provider, keeper, ONE_TOKEN, deadline)
    chain.pending_timestamp = deadline + 1
    before = _state(token, provider, keeper)
    with ape.reverts("erc20: expired deadline"):
        token.permit(provider, keeper, ONE_TOKEN, deadline, v, r, s, sender=keeper)
    assert _state(token, provider, keeper) == before


def test_permit__replayed_signature__reverts(token, chain, provider, keeper):
    deadline = chain.pending_timestamp + 3600
    v, r, s = _permit_sig(token, chain, provider, keeper, ONE_TOKEN, deadline)
    token.permit(provider, keeper, ONE_TOKEN, deadline, v, r, s, sender=keeper)
    # Spend it, so a successful replay would be visible as a new allowance.
    token.transferFrom(provider, keeper, ONE_TOKEN, sender=keeper)
    before = _state(token, provider, keeper)
    with ape.reverts("erc20: invalid signature"):
        token.permit(provider, keeper, ONE_TOKEN, deadline, v, r, s, sender=keeper)
    assert _state(token, provider, keeper) == before
    assert token.allowance(provider, keeper) == 0


def test_permit__signed_by_other_account__reverts(token, chain, provider, keeper, attacker):
    deadline = chain.pending_timestamp + 3600
    v, r, s = _permit_sig(token, chain, provider, attacker, ONE_TOKEN, deadline, signer=attacker)
    before = _state(token, provider, attacker)
    with ape.reverts("erc20: invalid signature"):
        token.permit(provider, attacker, ONE_TOKEN, deadline, v, r, s, sender=attacker)
    assert _state(token, provider, attacker) == before


def test_permit__tampered_amount__reverts(token, chain, provider, keeper):
    deadline = chain.pending_timestamp + 3600
    v, r, s = _permit_sig(token, chain, provider, keeper, ONE_TOKEN, deadline)
    with ape.reverts("erc20: invalid signature"):
        token.permit(provider, keeper, 2 * ONE_TOKEN, deadline, v, r, s, sender=keeper)
    assert token.allowance(provider, keeper) == 0
    assert token.nonces(provider) == 0


################################################################
#                          ownership                           #
################################################################


def test_transfer_ownership__owner__hands_over_owner_but_not_minter(token, deployer, keeper, holder):
    tx = token.transfer_ownership(keeper, sender=deployer)
    assert token.owner() == keeper.address
    # Unlike snekmate, the new owner does not become a minter; the old owner still loses its flag.
    assert not token.is_minter(keeper)
    assert not token.is_minter(deployer)
    (own,) = tx.decode_logs(token.OwnershipTransferred)
    assert _args(own) == {"previous_owner": deployer.address, "new_owner": keeper.address}
    minter_logs = [_args(log) for log in tx.decode_logs(token.RoleMinterChanged)]
    assert minter_logs == [{"minter": deployer.address, "status": False}]
    # Neither the new owner nor the old one can mint; only the new owner manages minters.
    supply = token.totalSupply()
    with ape.reverts("erc20: access is denied"):
        token.mint(holder, 1, sender=keeper)
    with ape.reverts("erc20: access is denied"):
        token.mint(holder, 1, sender=deployer)
    assert token.totalSupply() == supply and token.balanceOf(holder) == 0
    with ape.reverts("ownable: caller is not the owner"):
        token.set_minter(deployer, True, sender=deployer)
    token.set_minter(deployer, True, sender=keeper)
    assert token.is_minter(deployer)
    token.mint(holder, 1, sender=deployer)
    assert token.balanceOf(holder) == 1


def test_transfer_ownership__other_minters__keep_their_flag(token, deployer, keeper, user, holder):
    token.set_minter(user, True, sender=deployer)
    token.transfer_ownership(keeper, sender=deployer)
    assert token.is_minter(user)
    token.mint(holder, 2, sender=user)
    assert token.balanceOf(holder) == 2


def test_transfer_ownership__after_seal__new_owner_still_not_minter(token, deployer, keeper):
    """Sealed minters: the handover cannot be used to mint a new minter in, and the leaving
    owner's flag is dropped even though the set is sealed."""
    token.seal_minters(sender=deployer)
    token.transfer_ownership(keeper, sender=deployer)
    assert token.owner() == keeper.address
    assert not token.is_minter(keeper)
    assert not token.is_minter(deployer)
    with ape.reverts("compute_token: minters sealed"):
        token.set_minter(deployer, True, sender=keeper)


def test_transfer_ownership__not_owner__reverts(token, attacker, deployer):
    before = _state(token, attacker, deployer)
    with ape.reverts("ownable: caller is not the owner"):
        token.transfer_ownership(attacker, sender=attacker)
    assert _state(token, attacker, deployer) == before


def test_transfer_ownership__zero_address__reverts(token, deployer):
    before = _state(token, deployer)
    with ape.reverts("ownable: new owner is the zero address"):
        token.transfer_ownership(ZERO, sender=deployer)
    assert _state(token, deployer) == before
    assert token.owner() == deployer.address
    assert token.is_minter(deployer)


################################################################
#                 total_minted / total_burned                  #
################################################################


def _counters(token):
    return token.totalSupply(), token.total_minted(), token.total_burned()


def test_counters__after_deployment__supply_is_minted_minus_burned(token):
    supply, minted, burned = _counters(token)
    assert supply == minted - burned
    assert minted > 0  # conftest funds accounts by minting


def test_counters__mint_burn_burn_from__count_exactly(token, deployer, provider, keeper, holder):
    supply, minted, burned = _counters(token)
    token.mint(holder, 5 * ONE_TOKEN, sender=deployer)
    token.burn(2 * ONE_TOKEN, sender=holder)
    token.approve(keeper, ONE_TOKEN, sender=provider)
    token.burn_from(provider, ONE_TOKEN, sender=keeper)
    token.transfer(holder, ONE_TOKEN, sender=provider)  # transfers move neither counter
    assert _counters(token) == (supply + 2 * ONE_TOKEN, minted + 5 * ONE_TOKEN, burned + 3 * ONE_TOKEN)
    assert token.totalSupply() == token.total_minted() - token.total_burned()


def test_counters__failed_mint_or_burn__unchanged(token, attacker, provider, keeper, holder, deployer):
    before = _counters(token)
    with ape.reverts("erc20: access is denied"):
        token.mint(holder, 1, sender=attacker)
    with ape.reverts("erc20: burn amount exceeds balance"):
        token.burn(1, sender=holder)
    with ape.reverts("erc20: insufficient allowance"):
        token.burn_from(provider, 1, sender=keeper)
    with ape.reverts("erc20: mint to the zero address"):
        token.mint(ZERO, 1, sender=deployer)
    assert _counters(token) == before


def test_counters__zero_amounts__allowed_and_uncounted(token, provider, deployer, holder):
    before = _counters(token)
    token.burn(0, sender=provider)
    token.mint(holder, 0, sender=deployer)
    assert _counters(token) == before


def test_counters__mint_total_at_2_pow_128__reverts(token, deployer, holder):
    """Both counters live in one word (128 bits each): minting stops one wei short of 2**128."""
    supply, minted, burned = _counters(token)
    with ape.reverts("compute_token: counter overflow"):
        token.mint(holder, 2**128 - minted, sender=deployer)
    token.mint(holder, 2**128 - 1 - minted, sender=deployer)
    token.burn(2**128 - 1 - minted, sender=holder)
    assert _counters(token) == (supply, 2**128 - 1, burned + 2**128 - 1 - minted)
    with ape.reverts("compute_token: counter overflow"):
        token.mint(holder, 1, sender=deployer)
