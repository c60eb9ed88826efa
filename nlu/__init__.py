"""Intent classification: the fine-tuned BERT classifier and its training data.

Never imports the bot or the admin API: both depend on this package, not the reverse.
``nlu.BertIntentClassifier`` (the Rasa component) is imported only when asked for, so that
using the model without Rasa (``nlu.classifier``) never loads Rasa or TensorFlow.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "BertIntentClassifier":
        from nlu.rasa_component import BertIntentClassifier

        return BertIntentClassifier
    raise AttributeError(f"module 'nlu' has no attribute {name!r}")
