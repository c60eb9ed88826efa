"""``python -m bot.runtime.rasa_server run ...``: ``rasa run`` with its HTTP API secret kept off the
command line.

Rasa takes its token and its JWT secret only as command-line flags, and a process's command
line is readable by every local user (``ps``). This entry point reads the secret from the
0600 secrets file (or ``HELPDESK_RASA_TOKEN``) and hands it to Rasa's own argument parser
in-process, so ``/proc/<pid>/cmdline`` never holds it. Clients authenticate with a short-lived
JWT signed with that secret in the ``Authorization`` header (``--jwt-secret``), so no token
travels in a URL either; ``?token=`` still works for Rasa's own tools, and any token in a log
line is redacted. Two costs of Rasa's action calls are removed first
(``bot/runtime/rasa_patches.py``).
"""

from __future__ import annotations

import sys

from bot.runtime import rasa_config as runtime
from bot.runtime import rasa_patches
from nlu.privacy import redact_secrets_in_logs


def main() -> None:
    secret = runtime.rasa_token()
    redact_secrets_in_logs()
    rasa_patches.install()
    sys.argv = ["rasa", *sys.argv[1:], f"--auth-token={secret}", f"--jwt-secret={secret}",
                "--jwt-method=HS256"]
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
