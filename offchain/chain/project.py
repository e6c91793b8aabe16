"""The gpunet ape project (contracts, ape-config.yaml) wherever `gpunet` is run from.

ape's `project` is the project in the current directory. `gpunet` must work from any directory
once installed, so `use_gpunet_project()` points ape's local project at the checkout the package
was installed from (`pip install -e .`, which `make install` does): its contracts, compiled
`.build/` and ape-config.yaml (test mnemonic, foundry settings). ape has no public setter for
this; `ProjectManager.chdir` would also change the process's directory and so every relative
path a user typed.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# ape skips every source under a path with one of these folders in it (its own caches).
_APE_SKIPPED = (".cache", ".build")


class ProjectNotFound(RuntimeError):
    pass


def check_project_root(root: Path = PROJECT_ROOT) -> None:
    """One-line errors for an install ape cannot compile from."""
    contracts = root / "contracts"
    if not contracts.is_dir() or not (root / "ape-config.yaml").is_file():
        raise ProjectNotFound(
            f"gpunet's contracts are not next to the installed package ({root}): install from a checkout "
            "with `make install` (an editable `pip install -e .`)"
        )
    skipped = [part for part in root.parts if part in _APE_SKIPPED]
    if skipped:
        raise ProjectNotFound(
            f"the checkout lies under a {skipped[0]!r} folder ({root}): ape skips every source there and "
            "compiles nothing; clone gpunet somewhere else"
        )


def use_gpunet_project() -> None:
    """Makes ape's `project` the gpunet checkout (idempotent; before any use of `ape.project`)."""
    check_project_root()
    from ape.managers.project import ProjectManager
    from ape.utils.basemodel import ManagerAccessMixin

    access = ManagerAccessMixin.__dict__["local_project"]
    current = access._cache
    if current is not None and Path(current.path).resolve() == PROJECT_ROOT:
        return
    access._cache = ProjectManager(PROJECT_ROOT)
