# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title gpunet compute token
@custom:contract-name ComputeToken
@license AGPL-3.0-only
@notice ERC-20 with EIP-2612 permit (snekmate `erc20`). Anyone may burn
        their own tokens (`burn`) or an allowance (`burn_from`): the job
        market and the registry burn slashed and settled tokens this way.
        `total_minted` and `total_burned` count every mint and burn since
        deployment, so `totalSupply == total_minted - total_burned` holds
        and can be checked on-chain; Emissions reads `total_burned` to taper
        its schedule as customer burns grow (docs/ECONOMICS.md).
@custom:security Only addresses in `is_minter` may mint. The owner sets minters
        with `set_minter` until it calls `seal_minters`; after that the minter set
        can never change again (docs/SECURITY.md, finding 6): no governance action
        can revoke Settlement's or Emissions' right to mint (which would strand
        finished jobs) or add a minter. `transfer_ownership` never makes the new
        owner a minter (snekmate's does): the owner that leaves loses its own
        minter flag, as in snekmate. No fee on transfer, no rebasing, no
        blocklist: the other contracts rely on transfers moving exactly the
        amount asked. `mint`, `burn` and `burn_from` are snekmate's with a
        checked counter added: same ABI, same access rule, same revert reasons.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
implements: IERC20
implements: IERC20Detailed

from snekmate.auth import ownable
# `erc20` uses `ownable` for the minter role management.
initializes: ownable

from snekmate.tokens import erc20
# snekmate's ERC-20 + permit; `mint`, `burn` and `burn_from` are wrapped below to count.
initializes: erc20[ownable := ownable]

exports: (
    erc20.owner,
    erc20.eip712Domain,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.balanceOf,
    erc20.allowance,
    erc20.totalSupply,
    erc20.is_minter,
    erc20.nonces,
    erc20.transfer,
    erc20.approve,
    erc20.transferFrom,
    erc20.permit,
    erc20.DOMAIN_SEPARATOR,
    erc20.renounce_ownership,
)

# Every token ever minted and burned (checked additions): totalSupply == total_minted - total_burned.
# Every mint (high 128 bits) and burn (low 128 bits) since deployment, in one slot: a job's
# settlement burns and mints in one transaction, and one packed word costs one cold read and
# one write instead of two of each (~5k gas per job). 2**128 wei is 3.4e20 tokens: neither
# total can come near it (the supply cap is ~1e9 tokens), and checked math reverts if one did.
_totals: uint256
_HALF: constant(uint256) = 2**128

# True once the owner fixed the minter set for good (`seal_minters`).
minters_sealed: public(bool)

event MintersSealed:
    owner: indexed(address)


@deploy
def __init__(name_: String[25], symbol_: String[5], name_eip712_: String[50], version_eip712_: String[20]):
    ownable.__init__()
    erc20.__init__(name_, symbol_, 18, name_eip712_, version_eip712_)


@external
def set_minter(minter: address, status: bool):
    """
    @notice Owner only, until `seal_minters`: adds or removes a minter (snekmate's rules).
    """
    # snekmate's `set_minter` checks, repeated here (an exported external cannot be wrapped).
    ownable._check_owner()
    assert not self.minters_sealed, "compute_token: minters sealed"
    assert minter != empty(address), "erc20: minter is the zero address"
    assert minter != msg.sender, "erc20: minter is owner address"
    erc20.is_minter[minter] = status
    log erc20.RoleMinterChanged(minter=minter, status=status)


@external
def seal_minters():
    """
    @notice Owner only, once: fixes the minter set forever.
    """
    ownable._check_owner()
    assert not self.minters_sealed, "compute_token: minters sealed"
    self.minters_sealed = True
    log MintersSealed(owner=msg.sender)


@external
def transfer_ownership(new_owner: address):
    """
    @notice Owner only: hands ownership over. Unlike snekmate's, the new owner does not
            become a minter; the leaving owner loses its minter flag (as in snekmate).
    """
    ownable._check_owner()
    assert new_owner != empty(address), "ownable: new owner is the zero address"
    erc20.is_minter[msg.sender] = False
    log erc20.RoleMinterChanged(minter=msg.sender, status=False)
    ownable._transfer_ownership(new_owner)


@external
def mint(owner: address, amount: uint256):
    """
    @notice Creates `amount` tokens for `owner`; minters only (snekmate's rule and reasons).
    """
    assert erc20.is_minter[msg.sender], "erc20: access is denied"
    self._count(amount, 0)
    erc20._mint(owner, amount)


@external
def burn(amount: uint256):
    """
    @notice Destroys `amount` of the caller's tokens.
    """
    erc20._burn(msg.sender, amount)
    self._count(0, amount)


@external
def burn_from(owner: address, amount: uint256):
    """
    @notice Destroys `amount` of `owner`'s tokens, spending the caller's allowance.
    """
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._burn(owner, amount)
    self._count(0, amount)


@external
@view
def total_minted() -> uint256:
    """
    @notice Tokens minted since deployment (`totalSupply == total_minted - total_burned`).
    """
    return self._totals // _HALF


@external
@view
def total_burned() -> uint256:
    """
    @notice Tokens burned since deployment.
    """
    return self._totals % _HALF


@internal
def _count(minted: uint256, burned: uint256):
    totals: uint256 = self._totals
    new_minted: uint256 = totals // _HALF + minted
    new_burned: uint256 = totals % _HALF + burned
    assert new_minted < _HALF and new_burned < _HALF, "compute_token: counter overflow"
    self._totals = new_minted * _HALF + new_burned
