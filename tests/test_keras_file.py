"""The load allow-list and size rules match exactly what the package builds."""

import copy
import itertools
import json

import keras
import numpy as np
import pytest

from skembedrec._archive import DEFAULT_LIMITS
from skembedrec._keras_file import (
    ALLOWED_KERAS_CLASSES,
    LEGACY_KERAS_CLASSES,
    SIZE_RULES,
    check_config,
    package_classes,
)
from skembedrec._network import NetworkConfig, build_network
from skembedrec._time import TimeGrid


def _configurations():
    for hidden, dot, implicit, members, bias, features, jit in itertools.product(
        [(), (4,)], [True, False], [True, False], [1, 2], [True, False], [(0, 0), (3, 2)],
        [False, True],
    ):
        if not (hidden or dot or bias) or (jit and not (dot and implicit)):
            continue  # no output; XLA only changes the implicit layers
        yield NetworkConfig(n_users=5, n_items=6, n_factors=4, hidden_units=hidden,
                            dot_product=dot, implicit=implicit, n_estimators=members,
                            use_bias=bias, n_user_features=features[0],
                            n_item_features=features[1], jit_compile=jit, l2=0.1)
    # Time terms (they need the biases).
    yield NetworkConfig(n_users=5, n_items=6, n_factors=4, l2=0.1,
                        time_grid=TimeGrid(18_000, 18_100, 4))


def _walk(node):
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            yield node
            stack.extend(node.values())


@pytest.fixture(scope="module")
def built():
    """(classes, integer layer-config keys) found over every configuration's saved config."""
    classes, int_keys, configs = set(), set(), []
    for config in _configurations():
        # Through JSON, as config.json is written and read (tuples become lists).
        serialized = json.loads(json.dumps(
            keras.saving.serialize_keras_object(build_network(config))))
        configs.append((config, serialized))
        for node in _walk(serialized):
            if "class_name" in node or "module" in node:
                classes.add((node.get("module"), node.get("class_name")))
        for layer in serialized["config"]["layers"]:
            for key, value in layer["config"].items():
                if isinstance(value, int) and not isinstance(value, bool):
                    int_keys.add((layer["class_name"], key))
    return classes, int_keys, configs


def test_allow_list_is_exactly_the_classes_the_package_builds(built):
    classes, _, _ = built
    allowed = {(module, name) for module, names in ALLOWED_KERAS_CLASSES.items()
               for name in names}
    allowed |= {(cls.__module__, name) for name, cls in package_classes().items()}
    assert classes == allowed
    legacy = {(module, name) for module, names in LEGACY_KERAS_CLASSES.items()
              for name in names}
    assert not legacy & classes  # only older files hold them


def test_every_layer_size_has_exactly_one_rule(built):
    _, int_keys, _ = built
    assert int_keys == set(SIZE_RULES)


def test_every_built_configuration_passes_the_checks(built):
    for config, serialized in built[2]:
        check_config(serialized, "m", id_rows={config.n_users + 1, config.n_items + 1},
                     limits=DEFAULT_LIMITS, weights_bytes=10**8)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("input_dim", 20_000_001, r"input_dim=20000001.*rows as the file's vocabularies"),
    ("output_dim", 10**7, r"output_dim=10000000, outside 1\.\.65536"),
    ("lora_rank", 10**6, r"lora_rank=1000000, a size skembedrec networks never set"),
])
def test_an_edited_layer_size_is_refused_before_building(built, key, value, message):
    serialized = copy.deepcopy(built[2][0][1])
    layer = next(layer for layer in serialized["config"]["layers"]
                 if layer["class_name"] == "PenalizedEmbedding")
    layer["config"][key] = value
    with pytest.raises(ValueError, match=r"Refusing to load 'm\.skembedrec'.*" + message):
        check_config(serialized, "m.skembedrec", id_rows={6, 7}, limits=DEFAULT_LIMITS,
                     weights_bytes=10**8)


def test_weights_declared_beyond_the_weights_file_are_refused(built):
    serialized = built[2][0][1]
    with pytest.raises(ValueError, match=r"declares .* weight values, more than its weights"):
        check_config(serialized, "m", id_rows={6, 7}, limits=DEFAULT_LIMITS,
                     weights_bytes=10)
    assert np.isfinite(DEFAULT_LIMITS.ratio)
