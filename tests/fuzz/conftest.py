"""Fuzz tests run under plain pytest + titanoboa (no ape): see the Makefile `test` and `fuzz` targets.

FUZZ_STATS=1 prints, after the run, how often each action ended in each outcome and the
measured rules per second (to check that the state machine reaches deep states).
"""

import os


def pytest_terminal_summary(terminalreporter):
    if not os.environ.get("FUZZ_STATS"):
        return
    import sys

    m = next((mod for name, mod in sys.modules.items() if name.endswith("test_stateful_market")), None)
    if m is None:
        return
    tr = terminalreporter
    tr.section("stateful fuzz statistics")
    rules, calls, seconds = m.STATS["_rules"], m.STATS["_calls"], m.STATS["_seconds"]
    tr.write_line(
        f"{rules} rules ({calls} contract calls checked against the model) in {seconds:.1f}s of rule + invariant"
        f" time: {rules / max(seconds, 1e-9):.0f} rules/s"
    )
    for key in sorted(k for k in m.STATS if not k.startswith("_")):
        tr.write_line(f"  {m.STATS[key]:7d}  {key}")
