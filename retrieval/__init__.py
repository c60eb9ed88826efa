"""Curated answers and (soon) the FAISS retriever that finds them.

Never imports the bot or the admin API: both depend on this package, not the reverse.
"""
