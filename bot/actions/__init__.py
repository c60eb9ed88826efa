"""Custom actions, run by ``python -m bot.runtime.action_server --actions bot.actions``."""

from bot.actions.answers import ActionAnswer
from bot.actions.cards import ActionFreezeCard, ValidateLostCardForm
from bot.actions.handoff import ActionHandoff
from bot.actions.transfers import ActionTransferStatus, ValidateMissingTransferForm

__all__ = ["ActionAnswer", "ActionFreezeCard", "ActionHandoff", "ActionTransferStatus",
           "ValidateLostCardForm", "ValidateMissingTransferForm"]
