"""The operator (oracle) side: hardware challenges against provider agents, over HTTP.

Never imports `offchain.provider` (they meet only over HTTP); shared logic is in `offchain.benchmark`.
"""
