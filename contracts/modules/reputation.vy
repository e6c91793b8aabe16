# pragma version ~=0.4.3
"""
@title The layout of a provider's reputation word (shared by ProviderRegistry and JobMarket)
@custom:contract-name reputation
@license AGPL-3.0-only
@notice Six counters of 40 bits each, packed in one word per provider in ProviderRegistry
        (`ProviderRegistry.Reputation`). JobMarket sends `n << offset` increments with each
        collateral release and reads the word to set a job's audit rate.
"""

COMPLETED: constant(uint256) = 0
FAILED: constant(uint256) = 40
EXPIRED: constant(uint256) = 80
AUDITS_PASSED: constant(uint256) = 120
DISPUTES_WON: constant(uint256) = 160
DISPUTES_LOST: constant(uint256) = 200
MASK: constant(uint256) = 2**40 - 1
