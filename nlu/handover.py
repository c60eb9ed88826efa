"""The sentence vector the intent classifier hands to the answer retriever, in the parse data.

When the classifier was trained without touching its encoder (``ModelMeta.encoder_id``), its
pooled embedding of a message is the base checkpoint's sentence vector, the very vector the
retriever would compute again from the same text on the same weights. Handing it over saves
the action server that second encoding, the largest single cost of an answered turn.

The parse data carries it compactly: the unit vector as little-endian float16 in base64, with
the encoder's id. The retriever uses it only when the id is its own encoder's and the
classifier read the whole text (the classifier cuts at fewer tokens than the retriever);
otherwise it encodes the text as before. It is needed only during the turn and is never stored
(``bot/runtime/tracker_store.py`` removes it before saving).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

PARSE_KEY = "text_vector"
DTYPE = "<f2"


def pack(encoder_id: str, embedding: np.ndarray) -> dict[str, str]:
    """The parse data's entry for one pooled embedding (normalised here)."""
    vector = np.asarray(embedding, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(vector))
    unit = vector / norm if norm > 0 else vector
    return {"encoder": encoder_id,
            "vector": base64.b64encode(unit.astype(DTYPE).tobytes()).decode("ascii")}


def unpack(entry: Any, encoder_id: str, dim: int) -> np.ndarray | None:
    """The unit float32 vector of a parse data entry, or None when it cannot stand for the
    retriever's own encoding: another encoder, another size, or anything malformed."""
    if not isinstance(entry, dict) or entry.get("encoder") != encoder_id or not encoder_id:
        return None
    text = entry.get("vector")
    if not isinstance(text, str) or len(text) > 4 * (2 * dim + 2) // 3 + 4:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 2 * dim:
        return None
    vector = np.frombuffer(raw, dtype=DTYPE).astype(np.float32)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm < 0.5:
        return None
    return vector / norm
