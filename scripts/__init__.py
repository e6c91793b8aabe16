"""ape scripts (deploy) and Python entry points (demo, bench)."""
