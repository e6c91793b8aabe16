# pragma version ~=0.4.3
"""
@title Governance timelock
@custom:contract-name Timelock
@license AGPL-3.0-only
@notice snekmate's `timelock_controller`, deployed as is. Outside local networks it
        holds DEFAULT_ADMIN_ROLE on ProviderRegistry and JobMarket and owns
        ComputeToken, so every parameter change waits `get_minimum_delay()`.
@custom:security Proposers/cancellers and executors are set at deployment; the
        optional admin should renounce once roles are configured.
"""

from snekmate.auth import access_control
# The timelock's own proposer/executor/canceller roles.
initializes: access_control

from snekmate.governance import timelock_controller
# Unmodified snekmate timelock.
initializes: timelock_controller[access_control := access_control]

exports: timelock_controller.__interface__


@deploy
def __init__(minimum_delay: uint256, proposers: DynArray[address, 128], executors: DynArray[address, 128], admin: address):
    access_control.__init__()
    timelock_controller.__init__(minimum_delay, proposers, executors, admin)
