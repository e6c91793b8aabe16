# pragma version ~=0.4.3
"""
@title The layout of JobMarket's hot parameter word (shared by JobMarket and JobMarketParams)
@custom:contract-name hot_params
@license AGPL-3.0-only
@notice The values every job reads, packed in one word: JobMarketParams packs it from a checked
        parameter set (`pack`), JobMarket stores it (`market_params._hot_params`) and reads the
        fields. Basis points and job counts take 16 bits, windows and collateral_bps 24 bits
        (each bounded below that by JobMarketParams); the top bit is JobMarket's pause flag.
"""

FEE_BPS_SHIFT: constant(uint256) = 0
COLLATERAL_BPS_SHIFT: constant(uint256) = 16
CHALLENGE_WINDOW_SHIFT: constant(uint256) = 40
MIN_ACCEPT_WINDOW_SHIFT: constant(uint256) = 64
MAX_ACCEPT_WINDOW_SHIFT: constant(uint256) = 88
MIN_COMPLETE_WITHIN_SHIFT: constant(uint256) = 112
MAX_COMPLETE_WITHIN_SHIFT: constant(uint256) = 136
BASE_AUDIT_SHIFT: constant(uint256) = 160
NEW_AUDIT_SHIFT: constant(uint256) = 176
TRUSTED_AFTER_SHIFT: constant(uint256) = 192
BAD_RECORD_AUDIT_SHIFT: constant(uint256) = 208
DETECTION_SHIFT: constant(uint256) = 224
PAUSED: constant(uint256) = 1 << 255
MASK_16: constant(uint256) = 2**16 - 1
MASK_24: constant(uint256) = 2**24 - 1
