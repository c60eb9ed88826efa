"""Custom actions, run by ``python -m bot.action_server --actions bot.actions``."""

from bot.actions.answers import ActionAnswer

__all__ = ["ActionAnswer"]
