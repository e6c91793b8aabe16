"""ProviderRegistry.request_attestation: on-demand re-attestation by the machine's provider."""

import ape

from offchain.constants import MachineStatus


def test_request_attestation__jailed__back_to_pending(registry, deployer, provider, make_provider):
    mid = make_provider(provider)
    registry.set_machine_status(mid, int(MachineStatus.JAILED), sender=deployer)
    tx = registry.request_attestation(mid, sender=provider)
    assert registry.machine_status(mid) == MachineStatus.PENDING
    assert registry.attested_until(mid) == 0
    ev = tx.decode_logs(registry.MachineStatusChanged)[0]
    assert (ev.old_status, ev.new_status) == (MachineStatus.JAILED, MachineStatus.PENDING)


def test_request_attestation__active__back_to_pending_and_cannot_lock(
    registry, deployer, provider, make_provider, make_job, market, jobs
):
    mid = make_provider(provider)
    registry.request_attestation(mid, sender=provider)
    job_id, _ = make_job(ape.accounts.test_accounts[3])
    with ape.reverts("registry: machine not active"):
        market.accept(job_id, jobs.t(job_id), mid, sender=provider)


def test_request_attestation__pending__reverts(registry, provider, make_provider):
    mid = make_provider(provider, activate=False)
    with ape.reverts("registry: machine not active or jailed"):
        registry.request_attestation(mid, sender=provider)


def test_request_attestation__not_provider__reverts(registry, provider, attacker, make_provider):
    mid = make_provider(provider)
    with ape.reverts("registry: not the machine's provider"):
        registry.request_attestation(mid, sender=attacker)


def test_request_attestation__exited__reverts(registry, provider, make_provider):
    mid = make_provider(provider)
    registry.exit_machine(mid, sender=provider)
    with ape.reverts("registry: machine not active or jailed"):
        registry.request_attestation(mid, sender=provider)
