"""The provider side: the agent that answers the oracle's hardware challenges over HTTP.

Never imports `offchain.oracle` (they meet only over HTTP); shared logic is in `offchain.benchmark`.
"""
