"""The one edge to the chain: deployments, contract handles, job reconstruction."""
