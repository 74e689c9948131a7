"""Which model versions are loaded: TF Serving's base-path layout, version policies, labels."""

import gc
import logging
import threading
from pathlib import Path

import tensorflow as tf
from google.protobuf import json_format
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.config import model_server_config_pb2

from vae_zoo.serving.errors import ServingError

log = logging.getLogger("vae_zoo.serving")


class LoadedVersion:
    """One loaded SavedModel version: its callable signatures and their SignatureDefs."""

    def __init__(self, path):
        self.path = Path(path)
        self.saved_model = tf.saved_model.load(str(path))
        self.signatures = dict(self.saved_model.signatures)
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((self.path / "saved_model.pb").read_bytes())
        self.signature_defs = {
            name: signature_def
            for name, signature_def in proto.meta_graphs[0].signature_def.items()
            if not name.startswith("__")
        }

    def signature(self, name):
        name = name or "serving_default"
        if name not in self.signatures:
            raise ServingError(
                "INVALID_ARGUMENT", f'Serving signature name: "{name}" not found in signature def'
            )
        return name, self.signatures[name]

    def metadata(self):
        """The `signature_def` map as TF Serving's GetModelMetadata JSON renders it."""
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in self.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature_def)
        return json_format.MessageToDict(
            signature_map, preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )


class ServedModel:
    """A model name, its base path and version policy, and the versions loaded from it."""

    def __init__(self, name, base_path, policy=None, labels=None):
        self.name = name
        self.base_path = Path(base_path)
        self.policy = policy or {"latest": 1}
        self.labels = dict(labels or {})
        self.versions = {}
        self.lock = threading.Lock()

    def wanted_versions(self):
        available = sorted(
            int(p.name) for p in self.base_path.iterdir()
            if p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").is_file()
        ) if self.base_path.is_dir() else []
        if "all" in self.policy:
            return available
        if "specific" in self.policy:
            return [v for v in available if v in self.policy["specific"]]
        return available[-self.policy["latest"]:]

    def refresh(self):
        """Loads new versions and unloads those the policy no longer serves; True if any."""
        wanted = self.wanted_versions()
        before = set(self.versions)
        for version in wanted:
            if version not in self.versions:
                try:
                    loaded = LoadedVersion(self.base_path / str(version))
                except Exception as e:  # a broken version must not take the server down
                    log.error("cannot load %s version %d: %s", self.name, version, e)
                    continue
                with self.lock:
                    self.versions[version] = loaded
                log.info("serving %s version %d from %s", self.name, version, loaded.path)
        with self.lock:
            for version in [v for v in self.versions if v not in wanted]:
                del self.versions[version]
                log.info("unloaded %s version %d", self.name, version)
        return set(self.versions) != before

    def get(self, version=None, label=None):
        with self.lock:
            if label is not None:
                if label not in self.labels:
                    raise ServingError(
                        "INVALID_ARGUMENT", f"Unrecognized servable version label: {label}"
                    )
                version = self.labels[label]
            if version is None:
                if not self.versions:
                    raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({self.name})")
                version = max(self.versions)
            if version not in self.versions:
                raise ServingError(
                    "NOT_FOUND", f"Servable not found for request: Specific({self.name}, {version})"
                )
            return version, self.versions[version]


class ModelRegistry:
    """Every served model, refreshed from disk every `poll_seconds` in a background thread."""

    def __init__(self, models, poll_seconds=1.0):
        self.models = {model.name: model for model in models}
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = None

    @classmethod
    def from_flags(cls, model_name=None, model_base_path=None, model_config_file=None,
                   poll_seconds=1.0):
        if model_config_file:
            return cls(parse_model_config(Path(model_config_file).read_text()), poll_seconds)
        if not model_base_path:
            raise ValueError("pass --model_base_path (with --model_name) or --model_config_file")
        return cls([ServedModel(model_name or "default", model_base_path)], poll_seconds)

    def start(self):
        self.refresh()
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll, daemon=True, name="version-poller")
            self._thread.start()

    def stop(self):
        self._stop.set()

    def refresh(self):
        if any([model.refresh() for model in self.models.values()]):
            # A loaded SavedModel is ~500k Python objects that every full garbage collection
            # would walk: up to 0.2 s each, run while parsing a large JSON body. Frozen, they
            # are skipped; unfreezing first lets unloaded versions be collected.
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def get(self, name, version=None, label=None):
        if name not in self.models:
            target = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise ServingError("NOT_FOUND", f"Servable not found for request: {target}")
        return self.models[name].get(version, label)

    def status(self, name, version=None):
        model_version, _ = self.get(name, version)
        versions = [model_version] if version is not None else sorted(self.models[name].versions, reverse=True)
        return {"model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in versions
        ]}


def parse_model_config(text):
    """`ServedModel`s from a TF Serving `--model_config_file` (text-format ModelServerConfig)."""
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(text, config)
    served = []
    for model in config.model_config_list.config:
        which = model.model_version_policy.WhichOneof("policy_choice")
        if which == "all":
            policy = {"all": True}
        elif which == "specific":
            policy = {"specific": list(model.model_version_policy.specific.versions)}
        else:
            latest = model.model_version_policy.latest.num_versions if which == "latest" else 0
            policy = {"latest": latest or 1}
        served.append(ServedModel(model.name, model.base_path, policy, dict(model.version_labels)))
    return served
