"""Where ``helpdesk serve`` puts its processes: host and ports, from ``HELPDESK_*`` variables."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{name}={port} is outside 1-65535")
    return port


@dataclass(frozen=True)
class ServeSettings:
    host: str
    rasa_port: int
    actions_port: int
    api_port: int
    startup_timeout: float

    @classmethod
    def from_env(cls) -> ServeSettings:
        return cls(
            host=os.environ.get("HELPDESK_HOST", "127.0.0.1"),
            rasa_port=_port("HELPDESK_RASA_PORT", 5005),
            actions_port=_port("HELPDESK_ACTIONS_PORT", 5055),
            api_port=_port("HELPDESK_API_PORT", 8000),
            startup_timeout=float(os.environ.get("HELPDESK_STARTUP_TIMEOUT", "180")),
        )

    def url(self, port: int) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{port}"
