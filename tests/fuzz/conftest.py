"""Fuzz tests run under plain pytest + titanoboa (no ape): see the Makefile `test` and `fuzz` targets.

Every run prints, after the tests, how many rule steps each state machine ran (over how many
examples): `make fuzz` must run at least 10,000 with no invariant violated. FUZZ_STATS=1 also
prints how often each action ended in each outcome and the measured rules per second (to check
that the state machine reaches deep states).
"""

import os
import sys

MACHINES = (("test_stateful_market", "market"), ("test_stateful_economy", "economy"))


def _stats(suffix: str):
    m = next((mod for name, mod in sys.modules.items() if name.endswith(suffix)), None)
    return None if m is None else m.STATS


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    found = [(label, s) for suffix, label in MACHINES if (s := _stats(suffix)) is not None and s["_rules"]]
    if not found:
        return
    tr.section("stateful fuzz steps")
    for label, s in found:
        tr.write_line(f"{label}: {s['_rules']} rule steps in {s['_examples']} examples")
    tr.write_line(f"total: {sum(s['_rules'] for _, s in found)} rule steps")
    if not os.environ.get("FUZZ_STATS"):
        return
    for label, s in found:
        tr.section(f"stateful fuzz statistics: {label}")
        rules, calls, seconds = s["_rules"], s["_calls"], s["_seconds"]
        tr.write_line(
            f"{rules} rules ({calls} contract calls checked against the model) in {seconds:.1f}s of rule"
            f" + invariant time: {rules / max(seconds, 1e-9):.0f} rules/s"
        )
        for key in sorted(k for k in s if not k.startswith("_")):
            tr.write_line(f"  {s[key]:7d}  {key}")
