"""The scaled profile's load balancer: HAProxy's configuration and its TLS certificate.

HAProxy (Debian's package) terminates TLS for the two public ports and spreads requests over
the instances behind them. Customers' REST turns go round-robin: Rasa's Redis lock store and
the shared tracker store make any instance right for any message. Socket.io is routed sticky
by a cookie, because engine.io's long-polling transport keeps a session in the instance that
opened it; a websocket is one long connection and needs nothing more. Backends are checked
every two seconds, and a request whose connection failed is sent to another instance (a request
that reached an instance is never sent twice: it may have been processed).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

HEALTH_PATH = "/proxy-health"  # HAProxy answers it itself, on the action servers' front


def binary() -> str | None:
    """HAProxy's executable (Debian puts it in /usr/sbin, which a user's PATH may lack)."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


@dataclass(frozen=True)
class Layout:
    """Where everything listens: the public (TLS) and internal fronts, and the backends."""

    host: str
    api_port: int  # public, TLS: the widget page, the console, the admin API
    rasa_port: int  # public, TLS: customers' REST and socket.io
    actions_port: int  # internal: Rasa calls the action servers through it
    rasa_internal_port: int  # internal: the admin API's hand-off replies and "Try it"
    api_backend: int
    rasa_backends: tuple[int, ...]
    action_backends: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        return {"host": self.host, "api_port": self.api_port, "rasa_port": self.rasa_port,
                "actions_port": self.actions_port,
                "rasa_internal_port": self.rasa_internal_port,
                "api_backend": self.api_backend, "rasa_backends": list(self.rasa_backends),
                "action_backends": list(self.action_backends)}


def render(layout: Layout, certificate: Path) -> str:
    """haproxy.cfg for ``layout``, with TLS from ``certificate`` (certificate and key)."""
    host = layout.host
    rasa = "\n".join(f"    server rasa{i} {host}:{port}"
                     for i, port in enumerate(layout.rasa_backends, 1))
    # The same servers, their health shared with the round-robin backend's checks.
    sockets = "\n".join(f"    server rasa{i} {host}:{port} no-check track rasa/rasa{i} "
                        f"cookie rasa{i}" for i, port in enumerate(layout.rasa_backends, 1))
    actions = "\n".join(f"    server actions{i} {host}:{port}"
                        for i, port in enumerate(layout.action_backends, 1))
    return f"""# Written by `helpdesk serve --profile scaled`, again at every start.
global
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    option forwardfor
    timeout connect 2s
    timeout client 75s
    timeout server 75s
    timeout tunnel 1h
    timeout http-request 10s
    # A busy instance (a model loading, a full CPU) may answer a check late: only three
    # missed checks in a row take it out. A dead one refuses connections at once, and a
    # refused connection is retried on another instance.
    timeout check 5s
    retries 3
    option redispatch
    default-server check inter 2s fall 3 rise 2

frontend customers
    bind {host}:{layout.rasa_port} ssl crt {certificate}
    http-request set-header X-Forwarded-Proto https
    use_backend rasa_sockets if {{ path_beg /socket.io }}
    default_backend rasa

frontend rasa_internal
    bind {host}:{layout.rasa_internal_port}
    default_backend rasa

frontend console
    bind {host}:{layout.api_port} ssl crt {certificate}
    http-request set-header X-Forwarded-Proto https
    default_backend api

frontend actions
    bind {host}:{layout.actions_port}
    monitor-uri {HEALTH_PATH}
    default_backend actions

backend rasa
    balance roundrobin
    option httpchk GET /
{rasa}

backend rasa_sockets
    balance roundrobin
    cookie HELPDESK_RASA insert indirect nocache httponly secure
{sockets}

backend api
    option httpchk GET /health
    server api {host}:{layout.api_backend}

backend actions
    balance roundrobin
    option httpchk GET /health
{actions}
"""


def self_signed(path: Path, host: str) -> Path:
    """A self-signed certificate and its key for ``host`` (and localhost), made once into
    ``path`` (mode 0600, written whole then renamed), for a laptop or a test; production
    names its own with ``HELPDESK_TLS_CERTIFICATE``."""
    if path.is_file():
        return path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lepton Helpdesk (self-signed)")])
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for address in {host, "127.0.0.1"}:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5))
                   .not_valid_after(now + timedelta(days=365))
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .sign(key, hashes.SHA256()))
    pem = certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    partial.replace(path)
    return path
