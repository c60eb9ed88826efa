"""Custom actions run by the action server (``python -m rasa_sdk --actions bot.actions``)."""

from bot.actions.answers import ActionAnswer

__all__ = ["ActionAnswer"]
