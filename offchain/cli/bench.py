"""`gpunet bench`: measure this machine and classify it."""

from __future__ import annotations

import json

import click
from rich.table import Table

from offchain.cli.common import json_option
from offchain.cli.common import out as console


@click.command()
@json_option
@click.option("--device", default=None, help="torch device to measure, e.g. cuda:1 or cpu (default: cuda if present).")
@click.option("--claim", default=None, help="Also judge a claimed GPU class (id or name, e.g. 10 or 'H100 SXM5').")
def bench(as_json: bool, device: str | None, claim: str | None) -> None:
    """Measure this machine (matmul TFLOPS per dtype, copy bandwidth, memory) and classify it."""
    from offchain.benchmark.classify import best_match, check_claim
    from offchain.benchmark.gpu_classes import get_class

    try:
        claimed = get_class(claim) if claim is not None else None
    except KeyError as e:
        raise click.BadParameter(str(e.args[0]), param_hint="--claim") from None
    from offchain.benchmark.measure import measure

    try:
        if as_json:
            profile = measure(device=device)
        else:
            with console.status(f"measuring {device or 'default device'} (a few seconds)..."):
                profile = measure(device=device)
    except (RuntimeError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    save_profile(profile)
    match = best_match(profile)
    result = check_claim(profile, claimed) if claimed is not None else None
    if as_json:
        out = {"profile": profile.to_dict(), "best_match": match.to_dict() if match else None}
        if result is not None:
            out["claim"] = {
                "class_id": claimed.class_id,
                "name": claimed.name,
                "passed": result.passed,
                "suspicious": result.suspicious,
                "reasons": result.reasons,
            }
        click.echo(json.dumps(out, indent=2))
        return
    t = Table(title=f"benchmark: {profile.name} ({profile.device})", show_header=False)
    t.add_row("device type", profile.device_type)
    if profile.capability:
        t.add_row("compute capability", ".".join(map(str, profile.capability)))
    t.add_row("PCI id", profile.pci_id or "-")
    t.add_row("driver / CUDA", f"{profile.driver or '-'} / {profile.cuda_version or '-'}")
    t.add_row("torch", profile.torch_version)
    t.add_row("platform", f"{profile.platform}, {profile.cpu_count} cores")
    mem_total, mem_free = profile.memory_total_bytes / 2**30, profile.memory_free_bytes / 2**30
    t.add_row("memory total / free", f"{mem_total:.1f} / {mem_free:.1f} GiB")

    def share(v: float, spec: float | None) -> str:
        if not spec:
            return ""
        if match.is_floor:
            return f"  ({v / spec:.1f}x the {match.name} floor)"
        return f"  ({v / spec:.0%} of {match.name}'s spec)"

    for dtype, v in profile.tflops.items():
        spec = match.tflops(dtype) if match else None
        t.add_row(f"{dtype} matmul", f"{v:.4g} TFLOPS at n={profile.matmul_n.get(dtype)}{share(v, spec)}")
    bw_share = share(profile.bandwidth_gbs, match.bandwidth_gbs) if match else ""
    t.add_row("copy bandwidth", f"{profile.bandwidth_gbs:.4g} GB/s{bw_share}")
    if profile.fp32_rel_error is not None:
        t.add_row("fp32 rel. error", f"{profile.fp32_rel_error:.1e}")
    t.add_row("best match", f"{match.class_id} {match.name}" if match else "none (below the CPU floor)")
    for note in profile.notes:
        t.add_row("note", note)
    t.add_row("took", f"{profile.elapsed_s:.1f} s")
    console.print(t)
    if result is not None:
        verdict = "passes" if result.passed else "fails"
        if result.suspicious:
            verdict += " (suspicious)"
        console.print(f"claim {claimed.class_id} {claimed.name}: {verdict}")
        for r in result.reasons:
            console.print(f"  - {r}")


def profile_path():
    """Where `gpunet bench` keeps this machine's last profile ($XDG_CACHE_HOME/gpunet/bench.json)."""
    import os
    from pathlib import Path

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpunet" / "bench.json"


def save_profile(profile) -> None:
    path = profile_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(profile.to_dict()))
    except OSError:  # a read-only home: register then just cannot check the claim
        pass


def load_saved_profile():
    from offchain.benchmark.profile import Profile

    try:
        return Profile.from_dict(json.loads(profile_path().read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
