"""The cost of the service's password hashes. The suite signs in with cheap Argon2 parameters
(tests/conftest.py); what the service itself hashes with must stay strong."""

from __future__ import annotations

from argon2 import PasswordHasher, Type, extract_parameters

from tests.conftest import PRODUCTION_HASHER


def test_the_service_hashes_with_argon2id_at_a_strong_cost() -> None:
    """Argon2id with at least the memory and passes OWASP's password storage guidance asks for
    (19 MiB and 2 passes), read from a hash the service's hasher makes."""
    assert isinstance(PRODUCTION_HASHER, PasswordHasher)
    made = extract_parameters(PRODUCTION_HASHER.hash("correct horse battery"))
    assert made.type is Type.ID
    assert made.memory_cost >= 19 * 1024 and made.time_cost >= 2, made


def test_the_suite_hashes_cheaply_but_for_real() -> None:
    """The swap the suite makes is still Argon2: a wrong password fails against it."""
    from dispatcher.services import users

    hashed = users._hasher.hash("correct horse battery")  # noqa: SLF001
    assert extract_parameters(hashed).memory_cost < 19 * 1024
    assert users._verify(hashed, "correct horse battery") is True  # noqa: SLF001
    assert users._verify(hashed, "correct horse batery") is False  # noqa: SLF001
