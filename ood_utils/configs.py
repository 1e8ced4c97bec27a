"""What identifies a training configuration: its fields that differ from their
defaults, and the short hash of them (with a format version) that names its
checkpoints. The image ensembles' :class:`~ood_utils.train.TrainConfig` and the text
twins' :class:`~ood_utils.text.TextConfig` are :class:`KeyedConfig`\\ s."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import ClassVar


def config_fields(config: object) -> dict[str, object]:
    """A dataclass's fields that differ from their defaults: what identifies the
    configuration.

    Leaving defaults out means that a field added later, whose default keeps the old
    behaviour, changes no existing key (a changed default must bump the format version).
    """
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        if value != default or type(value) is not type(default):
            out[f.name] = value
    return out


def config_key(config: object, version: int) -> str:
    """A short hash of a dataclass's non-default fields (:func:`config_fields`) plus a
    format
    ``version``: a checkpoint's cache key."""
    payload = json.dumps({"format": version, **config_fields(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class KeyedConfig:
    """A frozen dataclass of training settings whose cache key is :func:`config_key`
    of its fields and its class's ``format_version`` (bumped whenever the training code
    changes in a way that changes the weights): the image ensembles'
    :class:`~ood_utils.train.TrainConfig` and the text twins'
    :class:`~ood_utils.text.TextConfig`."""

    format_version: ClassVar[int]

    def key(self) -> str:
        """A short hash of the fields that differ from their defaults, plus the format
        version.

        Fields at their default values are left out, so adding a field (with a default
        that keeps the old behaviour) leaves every existing key, and cached checkpoint,
        valid."""
        return config_key(self, self.format_version)
