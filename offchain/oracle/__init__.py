"""The operator (oracle) side: hardware challenges against provider agents and audits of their
jobs (`auditor`), over HTTP; the service (`service`) signs and submits the quorum's reports.

Never imports `offchain.provider` (they meet only over HTTP); shared logic is in `offchain.benchmark`.
"""
