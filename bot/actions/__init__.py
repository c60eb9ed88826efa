"""Custom actions run by the action server (``python -m rasa_sdk --actions bot.actions``).

Importing the package starts loading the answer retriever in the background, so that the
index is warm before the first question arrives.
"""

from bot.actions.answers import ActionAnswer
from bot.actions.retriever import start_in_background

start_in_background()

__all__ = ["ActionAnswer"]
