"""Refusals of the domain, independent of HTTP: services and the learning loop raise these,
and the admin API maps each kind to its status code in one place (``admin_api.api.errors``),
while the CLI prints the same message and exits non-zero."""

from __future__ import annotations


class DomainError(ValueError):
    """A request the domain refuses; the message says why, for the person who asked."""


class NotFound(DomainError):
    """The thing named does not exist."""


class Conflict(DomainError):
    """The request clashes with the current state (already queued, already handled...)."""


class Invalid(DomainError):
    """The request is well-formed but cannot be carried out as given."""
