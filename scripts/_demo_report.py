"""What `make demo` (scripts/demo.py) shows and how: the console, quiet logging, live waits,
the expectations it checks, its tables and its closing summary.

- The console is at most 100 columns wide (exactly 100 when not a terminal), and every table
  is laid out to fit it.
- Library output never reaches the console: ape's logger (`INFO: Confirmed 0x…`), other
  loggers and Python warnings all go to the run's own log file (`demo.log`).
- A wait shows a live line with the seconds spent (`Console.status`); when the output is not a
  terminal only the line that follows it is printed.
- `Checks` records each expectation; the first one that fails becomes the one paragraph the
  demo ends with, next to the paths of the log files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from offchain.constants import ONE_TOKEN, JobStatus

WIDTH = 100


def make_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        return Console(width=WIDTH, highlight=False)
    console.width = min(console.width, WIDTH)
    return console


def short(addr: str) -> str:
    """0x1234…abcd"""
    return f"{addr[:6]}…{addr[-4:]}" if len(addr) > 12 else addr


def gpu(wei: int, sign: bool = False) -> str:
    return f"{wei / ONE_TOKEN:{'+' if sign else ''},.3f}"


def hang(console: Console, lead: str, markup: str) -> None:
    """`lead`, then `markup` wrapped with its lines aligned after `lead` (a hanging indent)."""
    grid = Table.grid()
    grid.add_column(width=len(lead), no_wrap=True)
    grid.add_column()
    grid.add_row(lead, markup)
    console.print(grid)


def table(title: str, *columns: str, right: tuple[int, ...] = (), header: bool = True) -> Table:
    t = Table(title=title, title_style="bold", box=box.SIMPLE_HEAD, show_edge=False, show_header=header)
    for i, c in enumerate(columns):
        t.add_column(c, justify="right" if i in right else "left")
    return t


# ---------------------------------------------------------------------------- logging


def quiet_logging(log_file: Path) -> logging.Handler:
    """Every logger and every warning of this process goes to `log_file`, nothing to the console
    (call it before importing ape; `quiet_ape` then takes ape's own console handlers away)."""
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in root.handlers[:]:
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> the file
    return handler


def quiet_ape() -> None:
    """ape's loggers print through their own click handler: remove it so that their records
    propagate to the root logger's file instead (run again after anything that may add one)."""
    from ape.logging import ClickHandler, logger

    logger.set_level(logging.INFO)  # `Confirmed 0x…` and the like, in the file
    for lg in [logging.getLogger(), *logging.root.manager.loggerDict.values()]:
        if isinstance(lg, logging.Logger):
            for h in lg.handlers[:]:
                if isinstance(h, ClickHandler):
                    lg.removeHandler(h)
            lg.propagate = True


# ---------------------------------------------------------------------------- waiting


class Elapsed:
    """A status line that counts the seconds since it started (re-rendered by rich)."""

    def __init__(self, what: str):
        self.what, self.detail, self.t0 = what, "", time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.t0

    def __rich__(self) -> Text:
        return Text(f"{self.what}{self.detail}… {self.seconds:.0f} s")


@contextmanager
def busy(console: Console, what: str) -> Iterator[Elapsed]:
    e = Elapsed(what)
    with console.status(e):
        yield e


def wait(
    console: Console,
    what: str,
    pred: Callable[[], bool],
    timeout: float,
    poll: float = 0.5,
    detail: Callable[[], str] | None = None,
) -> tuple[bool, float]:
    """Polls `pred` under a live `what… N s` line; (whether it came true, seconds waited)."""
    with busy(console, what) as e:
        while True:
            if pred():
                return True, e.seconds
            if e.seconds > timeout:
                return False, e.seconds
            if detail is not None:
                e.detail = detail()
            time.sleep(poll)


# ---------------------------------------------------------------------------- expectations


class DemoFailed(Exception):
    """An expectation the rest of the demo depends on failed (already recorded in Checks)."""


class Checks:
    """Every expectation the demo checks: how many held, and which failed and why."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[tuple[str, str]] = []

    def expect(self, cond: object, what: str, why: str | Callable[[], str] = "") -> bool:
        if cond:
            self.passed += 1
            return True
        self.failed.append((what, why() if callable(why) else why))
        return False

    def require(self, cond: object, what: str, why: str | Callable[[], str] = "") -> None:
        """`expect`, and stop the demo when it fails: what follows depends on it."""
        if not self.expect(cond, what, why):
            raise DemoFailed(what)


def failure_paragraph(checks: Checks, log_dir: Path, logs: list[str], phase: str) -> str:
    """One paragraph: the first expectation that failed and why, the others by name, the logs."""
    what, why = checks.failed[0]
    if what:
        text = f"demo FAILED in {phase}: expected {what}" + (f", but {why}." if why else ".")
    else:  # an error, not an expectation
        text = f"demo FAILED in {phase}: {why}."
    if len(checks.failed) > 1:
        text += " Also failed: " + "; ".join(w or y for w, y in checks.failed[1:]) + "."
    return (
        f"{text} Each process wrote a log under {log_dir}/ ({', '.join(logs)}); this process's own log "
        "(ape's lines, warnings, tracebacks) is demo.log there."
    )


# ---------------------------------------------------------------------------- jobs


@dataclass
class Job:
    user: str
    provider: str
    spec: dict
    job_id: int = 0
    payment: int = 0
    units: int = 0
    drawn: bool = False
    audit_bps: int = 0
    disputer: str = ""
    check: str = ""  # the user's local re-execution: "", "match", "mismatch"
    disputed: str = ""  # "", "mismatch", "false"
    status: JobStatus | None = None
    provider_gets: int = 0  # minted (+ a won bond), or minus what was slashed
    bond: int = 0
    user_back: int = 0  # refund + compensation (failed) or penalty (expired)

    @property
    def expected(self) -> JobStatus:
        return {"cheater": JobStatus.FAILED, "flaky": JobStatus.EXPIRED}.get(self.provider, JobStatus.FINALIZED)

    @property
    def how_checked(self) -> str:
        if self.drawn:
            return "drawn for audit"
        if self.disputed == "false":
            return "wrongly disputed"
        if self.disputed == "mismatch":
            return "mismatch: disputed"
        return {"match": "re-ran: match", "": "-"}.get(self.check, self.check)


def jobs_table(jobs: list[Job]) -> Table:
    escrows = {gpu(j.payment) for j in jobs}
    each = f"each escrowed {escrows.pop()} GPU" if len(escrows) == 1 else "escrows differ"
    t = table(
        f"jobs ({each}): how each was checked, what the provider got (GPU)",
        "job", "user → provider", "kind", "checked", "outcome", "provider gets", right=(0,),
    )  # fmt: skip
    for j in jobs:
        good = j.status == j.expected
        name = j.status.name if j.status is not None else "?"
        if j.status == JobStatus.FINALIZED:
            gets = f"+{gpu(j.provider_gets)} " + (f"(bond {gpu(j.bond)})" if j.bond else "minted")
        elif j.status == JobStatus.FAILED:
            gets = f"{gpu(j.provider_gets, True)} slashed"
        elif j.status == JobStatus.EXPIRED:
            gets = f"{gpu(j.provider_gets, True)} no-show penalty"
        else:
            gets = "-"
        outcome = f"[{'green' if good else 'red'}]{name}[/]"
        t.add_row(str(j.job_id), f"{j.user} → {j.provider}", j.spec["kind"], j.how_checked, outcome, gets)
    return t


@dataclass
class Facts:
    """What the summary says, gathered as the demo runs (token amounts in wei)."""

    liar_claim: str = ""
    liar_status: str = ""
    liar_slashed: int = 0
    liar_signers: int = 0
    jobs: list[Job] = field(default_factory=list)
    # provider name -> (job income: minted + bonds won, emissions claimed, slashed)
    earnings: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    supply_setup: int = 0
    supply_end: int = 0
    settle_minted: int = 0
    settle_burned: int = 0
    emitted: int = 0
    slash_burned: int = 0
    other_burned: int = 0


def ids(items: list) -> str:
    """ "1, 2 and 3" (job ids, or any strings)."""
    s = [str(getattr(x, "job_id", x)) for x in items]
    return "none" if not s else s[0] if len(s) == 1 else ", ".join(s[:-1]) + " and " + s[-1]


def summary_lines(f: Facts) -> list[str]:
    """About a dozen lines: who cheated and how each was caught, who earned what, the supply."""
    slashed = f"{gpu(f.liar_slashed)} GPU slashed" if f.liar_slashed else "[red]nothing slashed[/]"
    out = [f"liar, a CPU claiming {f.liar_claim}, failed the timed hardware challenge: {f.liar_status}, {slashed}."]
    cheats = [j for j in f.jobs if j.provider == "cheater"]
    failed = [j for j in cheats if j.status == JobStatus.FAILED]
    how = []
    if drawn := [j for j in failed if j.drawn]:
        how.append(f"{ids(drawn)} drawn for audit")
    for user in sorted({j.disputer for j in failed if not j.drawn}):
        how.append(f"{ids([j for j in failed if not j.drawn and j.disputer == user])} disputed after {user}'s own "
                   "re-run differed")  # fmt: skip
    missed = len(cheats) - len(failed)
    if not failed:
        out.append("cheater (fake results): [red]none of its jobs was caught[/].")
    else:
        out.append(
            f"cheater (fake results) failed jobs {ids(failed)} ({'; '.join(how)}): the oracles' re-run confirmed "
            "each" + (f", [red]{missed} not caught[/]" if missed else "")
            + f"; {gpu(-sum(j.provider_gets for j in failed))} GPU of collateral slashed, users compensated."
        )  # fmt: skip
    for j in (j for j in f.jobs if j.provider == "flaky"):
        status = j.status.name if j.status else "?"
        out.append(
            f"flaky never delivered job {j.job_id}: {status}, {j.user} refunded plus a "
            f"{gpu(-j.provider_gets)} GPU no-show penalty."
        )
    for j in (j for j in f.jobs if j.disputed == "false"):
        out.append(
            f"{j.disputer} wrongly disputed honest's job {j.job_id}: the audit found it valid, his "
            f"{gpu(j.bond)} GPU bond went to honest."
        )
    earned = ", ".join(f"{n} {gpu(a + b - c, True)}" for n, (a, b, c) in f.earnings.items())
    out.append(f"Net (job pay + bonds + emissions - slashed): {earned} GPU.")
    other = f", {gpu(f.other_burned)} otherwise" if f.other_burned else ""
    out.append(
        f"Token supply {gpu(f.supply_setup)} -> {gpu(f.supply_end)} GPU ({gpu(f.supply_end - f.supply_setup, True)}):"
        f" minted {gpu(f.settle_minted)} as job pay and {gpu(f.emitted)} as emissions; burned "
        f"{gpu(f.settle_burned)} of escrow and {gpu(f.slash_burned)} of slashed stake{other}."
    )
    return out


def print_summary(console: Console, f: Facts) -> None:
    console.print()
    console.print("[bold]Summary[/]")
    for line in summary_lines(f):
        hang(console, "- ", line)


def print_failure(console: Console, checks: Checks, log_dir: Path, logs: list[str], phase: str) -> None:
    console.print()
    console.print(f"[bold red]{escape(failure_paragraph(checks, log_dir, logs, phase))}[/]")
