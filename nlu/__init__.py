"""Intent classification: training data loading now; the fine-tuned BERT classifier plugs in here.

Never imports the bot or the admin API: both depend on this package, not the reverse.
"""
