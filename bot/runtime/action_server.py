"""``python -m bot.runtime.action_server``: Rasa SDK's action server, with the answer retriever
warming.

Rasa SDK has no start-up hook, and starting the retriever when ``bot.actions`` is imported
would load models in every process that merely imports the actions (tests, tools). This entry
point starts it explicitly, then hands over to Rasa SDK's own command line (same arguments).
"""

from __future__ import annotations


def main() -> None:
    # Imported here, in the main thread, before the loader thread starts: transformers' lazy
    # module imports are not safe to run from two threads at once.
    import sentence_transformers  # noqa: F401
    from rasa_sdk.__main__ import main as rasa_sdk_main

    from bot.actions.retriever import start_in_background

    start_in_background()
    rasa_sdk_main()


if __name__ == "__main__":
    main()
