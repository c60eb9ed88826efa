"""``python -m bot.runtime.action_server``: Rasa SDK's action server, with the answer retriever
warming and its answers version in the health output.

Rasa SDK has no start-up hook, and starting the retriever when ``bot.actions`` is imported
would load models in every process that merely imports the actions (tests, tools). This entry
point starts it explicitly, then hands over to Rasa SDK's own command line (same arguments).
Several action servers each follow the admin API's answers feed on their own, so
``/health/answers`` says which answers version this one serves: an operator (or a test) sees
that an answer published once is live on every one of them.
"""

from __future__ import annotations

import os
from typing import Any

import pluggy

hookimpl = pluggy.HookimplMarker("rasa_sdk")


class AnswersHealth:
    """A Rasa SDK plugin (its ``attach_sanic_app_extensions`` hook) adding the route."""

    @hookimpl
    def attach_sanic_app_extensions(self, app: Any) -> None:
        from sanic import response

        from bot.actions.retriever import answers_version, question_counts

        @app.get("/health/answers")
        async def answers_health(_: Any) -> Any:
            version = answers_version()
            return response.json({"status": "ok" if version is not None else "loading",
                                  "answers_version": version, "pid": os.getpid(),
                                  "questions": question_counts()})


def main() -> None:
    # Imported here, in the main thread, before the loader thread starts: transformers' lazy
    # module imports are not safe to run from two threads at once.
    import sentence_transformers  # noqa: F401
    from rasa_sdk.__main__ import main as rasa_sdk_main
    from rasa_sdk.plugin import plugin_manager

    from bot.actions.retriever import start_in_background

    plugin_manager().register(AnswersHealth())
    start_in_background()
    rasa_sdk_main()


if __name__ == "__main__":
    main()
