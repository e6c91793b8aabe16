"""The user client: SDK (`offchain.client.sdk`) and the `gpunet job ...` commands (`offchain.client.cli`)."""
