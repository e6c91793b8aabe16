"""`gpunet explorer`: a read-only web view of one deployment, served from a local index.

- `index.py`: the explorer's SQLite index, kept current from every contract's events by
  `offchain.chain.follow` (one `eth_getLogs` per chunk), plus the few facts events do not carry:
  block times, who signed each attestation and verdict (recovered from the report transaction's
  signatures), and each provider's live reputation and audit rate.
- `views.py`: each page's data as a dict, from the index alone (no chain call while serving).
- `server.py`: the aiohttp app: an HTML page (Jinja2) and a JSON API (`/api/...`) per view,
  the static assets (CSS, uPlot for plots) shipped in this package.
"""
