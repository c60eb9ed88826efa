"""``BertIntentClassifier``: the fine-tuned intent model as a Rasa graph component.

Use it in ``config.yml`` as ``nlu.BertIntentClassifier`` (``nlu/__init__.py`` imports this
module only when Rasa asks for the name, so the ``nlu`` package stays light without Rasa).

Confidences: the model's probabilities are temperature-calibrated, then rescaled piecewise
linearly so that the out-of-scope threshold learned on validation data lands exactly on
``fallback_threshold``, which must equal ``FallbackClassifier``'s ``threshold``. Order is
unchanged. A message predicted as the out-of-scope intent reports confidence 0, so both
out-of-scope paths (the trained class and the threshold) end in the same ``nlu_fallback``.
When the model learned an out-of-scope score (``nlu/oos.py``), the threshold is on that score:
``intent.confidence`` is then the score rescaled the same way, and ``intent_ranking`` keeps
the calibrated probabilities.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier as RasaIntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from common.files import sha256_files
from nlu import handover
from nlu.calibration import rescale
from nlu.classifier import IntentClassifier, Prediction
from nlu.training import TrainParams, train

logger = logging.getLogger(__name__)
MODEL_FOLDER = "model"
_COMPONENT_KEYS = {"fallback_threshold", "ranking_length", "fast_inference", "threads"}


@lru_cache(maxsize=8)
def _checkpoint_digest(path: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    return sha256_files(Path(path), [name for name, _size, _mtime in stamp])


def checkpoint_fingerprint(base: str) -> str:
    """A content hash of a local checkpoint folder (or the hub name when it is not local)."""
    folder = Path(base)
    if not folder.is_dir():
        return f"hub:{base}"
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stamp = tuple((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in files)
    return _checkpoint_digest(str(folder), stamp)


def train_params_of(config: Dict[Text, Any]) -> TrainParams:
    """The training parameters inside a component config (``config.yml``'s pipeline entry)."""
    values = {k: v for k, v in config.items() if k not in _COMPONENT_KEYS and k != "name"}
    return TrainParams.from_dict(values)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class BertIntentClassifier(GraphComponent, RasaIntentClassifier):
    """Fine-tuned BERT-family intent classifier with calibrated, out-of-scope-aware output."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        defaults = {k: v for k, v in asdict(TrainParams()).items() if k != "device"}
        return {
            **defaults,
            "device": "auto",
            "fallback_threshold": 0.3,  # must equal FallbackClassifier's threshold
            "ranking_length": 10,
            "fast_inference": True,  # export ONNX after training (int8 if safe), serve with it
            "threads": 2,
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage,
                 resource: Resource, classifier: Optional[IntentClassifier] = None) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._classifier = classifier

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> BertIntentClassifier:
        return cls(config, model_storage, resource)

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """The base checkpoint's content: a changed checkpoint retrains, never reuses a cache."""
        base = config.get("base_model") or TrainParams().resolved_base()
        return checkpoint_fingerprint(str(base))

    def _train_params(self) -> TrainParams:
        return train_params_of(self._config)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
        if not examples:
            logger.warning("no intent examples: BertIntentClassifier was not trained")
            return self._resource
        texts = [m.get(TEXT) for m in examples]
        labels = [m.get(INTENT) for m in examples]
        with self._model_storage.write_to(self._resource) as directory:
            result = train(texts, labels, self._train_params(), Path(directory) / MODEL_FOLDER)
            logger.info("intent model trained: %s", result.metrics)
            if self._config.get("fast_inference", True):
                from nlu.export import export_onnx, prune_for_serving

                export_onnx(result.path, validation=result.validation)
                prune_for_serving(result.path)
            self._classifier = IntentClassifier.load(
                result.path, threads=self._config.get("threads"))
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> BertIntentClassifier:
        try:
            with model_storage.read_from(resource) as directory:
                path = Path(directory) / MODEL_FOLDER
                backend = "auto" if config.get("fast_inference", True) else "torch"
                classifier = IntentClassifier.load(path, backend=backend,
                                                   threads=config.get("threads"))
        except (ValueError, FileNotFoundError):
            logger.warning("BertIntentClassifier has no trained model; it will predict nothing")
            classifier = None
        return cls(config, model_storage, resource, classifier)

    def _to_rasa(self, prediction: Prediction) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        assert self._classifier is not None
        return to_rasa(prediction, self._classifier, self._config)

    def process(self, messages: List[Message]) -> List[Message]:
        if self._classifier is None:
            return messages
        texts = [m.get(TEXT) or "" for m in messages]
        predictions = self._classifier.predict_batch(texts, top=self._config["ranking_length"])
        encoder_id = self._classifier.meta.encoder_id
        for message, prediction in zip(messages, predictions, strict=True):
            intent, ranking = self._to_rasa(prediction)
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
            if encoder_id and prediction.embedding is not None and prediction.whole_text:
                # The retriever's sentence vector, already computed (nlu/handover.py).
                message.set(handover.PARSE_KEY, handover.pack(encoder_id, prediction.embedding),
                            add_to_output=True)
        return messages


def to_rasa(prediction: Prediction, classifier: IntentClassifier,
            config: Dict[Text, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``intent`` and ``intent_ranking`` as the component sets them on a message."""
    calib = classifier.meta.calibration
    configured = float(config["fallback_threshold"])
    learned = calib.confidence_threshold()
    ranking = [{"name": name, "confidence": float(rescale(value, learned, configured))}
               for name, value in prediction.ranking[: config["ranking_length"]]]
    top = dict(ranking[0])
    # What FallbackClassifier reads: the in-scope score (the confidence, or the learned
    # out-of-scope score) with its threshold on the configured one; 0 for the OOS intent.
    top["confidence"] = 0.0 if prediction.intent == calib.oos_intent else float(
        rescale(prediction.in_scope, calib.oos_threshold, configured))
    return top, ranking


class ArchivedClassifier:
    """The classifier inside a Rasa model archive, ranking exactly as that model serves
    (its own component config), without starting Rasa: the threshold simulator replays
    thousands of logged turns through the production model in batches."""

    def __init__(self, archive: Path) -> None:
        from nlu.evaluation import load_any

        self.config = {**BertIntentClassifier.get_default_config(), **_archived_config(archive)}
        self.classifier = load_any(archive)

    def rankings(self, texts: List[str]) -> List[List[Dict[str, Any]]]:
        """One text at a time, as Rasa parses a message: an int8 model quantizes activations
        with scales taken over the whole batch, so a batch's confidences differ from the
        served ones by a few points, enough to move a boosted score across a threshold."""
        top = int(self.config["ranking_length"])
        return [to_rasa(self.classifier.predict_batch([text], top=top)[0], self.classifier,
                        self.config)[1] for text in texts]


def _archived_config(archive: Path) -> Dict[Text, Any]:
    """The component's config from the archive's ``metadata.json`` (Rasa's predict schema)."""
    import json
    import tarfile

    with tarfile.open(archive) as opened:
        member = next((m for m in opened.getmembers()
                       if m.name.lstrip("./") == "metadata.json"), None)
        handle = opened.extractfile(member) if member is not None else None
        if handle is None:
            raise ValueError(f"{archive}: not a Rasa model archive (no metadata.json)")
        metadata = json.load(handle)
    nodes = (metadata.get("predict_schema") or {}).get("nodes") or {}
    for node in nodes.values():
        if str(node.get("uses", "")).endswith(".BertIntentClassifier"):
            return dict(node.get("config") or {})
    raise ValueError(f"{archive}: this Rasa model has no BertIntentClassifier")
