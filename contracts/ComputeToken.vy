# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title gpunet compute token
@custom:contract-name ComputeToken
@license AGPL-3.0-only
@notice ERC-20 with EIP-2612 permit (snekmate `erc20`). Anyone may burn
        their own tokens (`burn`) or an allowance (`burn_from`): the job
        market and the registry burn slashed and settled tokens this way.
@custom:security Only addresses in `is_minter` may mint. The owner (the
        governance timelock outside local networks) grants and revokes the
        minter role with `set_minter`; at deployment only the deployer is a
        minter and ownership transfer drops it (snekmate behaviour). No fee
        on transfer, no rebasing, no blocklist: the other contracts rely on
        transfers moving exactly the amount asked.
"""

from snekmate.auth import ownable
# `erc20` uses `ownable` for the minter role management.
initializes: ownable

from snekmate.tokens import erc20
# The token is exactly snekmate's ERC-20 + permit; nothing is overridden.
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


@deploy
def __init__(name_: String[25], symbol_: String[5], name_eip712_: String[50], version_eip712_: String[20]):
    ownable.__init__()
    erc20.__init__(name_, symbol_, 18, name_eip712_, version_eip712_)
