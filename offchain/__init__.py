"""gpunet off-chain code: the chain edge, the CLI, and (in later issues) the oracle, provider and client."""

__version__ = "0.1.0"
