"""Economics: the epoch emission schedule and the rewards leaves, pure (no chain, no HTTP).

`rewards` mirrors contracts/Emissions.vy: the schedule, the budget split, the availability
weight rule, the Merkle tree and proofs the contract verifies, and the EpochRewards typed data
the oracle quorum signs. docs/ECONOMICS.md ("Emissions") gives the formulas and the reasons.
"""
