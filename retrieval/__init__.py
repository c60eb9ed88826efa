"""Curated answers and the FAISS retriever that finds them, decides and stays in sync.

Never imports the bot or the admin API: both depend on this package, not the reverse.
"""
