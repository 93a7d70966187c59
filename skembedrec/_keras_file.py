"""The Keras model inside a model file (and inside a pickle): ``.keras`` bytes, checked
before Keras reads them.

Loading refuses, before any layer is built:

* any class a skembedrec network never contains (the allow-list below: exactly the Keras
  classes :func:`~._network.build_network` uses, checked by a test that builds every
  configuration; a ``Lambda`` layer, the usual carrier of code in a Keras file, is refused);
* any layer size that does not match the file's recorded vocabularies: id-indexed tables
  must have ``n_users + 1`` or ``n_items + 1`` rows (:data:`SIZE_RULES`), widths are bounded
  by :attr:`~._archive.Limits.width`, and the weights the config declares must fit in the
  weights file that comes with it;
* a weights file with datasets that are not plain numeric arrays or do not fit in its bytes.

Then ``keras.saving.load_model(..., safe_mode=True)`` builds it. Nothing is unpickled or run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np

from ._archive import Limits, check_hdf5, read_json, read_zip, refuse

_CONFIG, _METADATA, _WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
_MEMBERS = frozenset({_CONFIG, _METADATA, _WEIGHTS})
_PACKAGE_PREFIX = "skembedrec>"

# The Keras classes a skembedrec network contains, by config ``module``; the package's own
# layers (``skembedrec._layers.LAYER_CLASSES``) are allowed besides. Anything else is
# refused before Keras sees the config. tests/test_keras_file.py builds every configuration
# and checks that this is exactly the set found.
ALLOWED_KERAS_CLASSES: dict[str | None, frozenset[str]] = {
    "keras": frozenset({"DTypePolicy"}),
    "keras.layers": frozenset({"InputLayer", "Dense", "Dropout", "Concatenate", "Add"}),
    "keras.initializers": frozenset({"GlorotUniform", "RandomUniform", "Zeros"}),
    "keras.metrics": frozenset({"MeanSquaredError"}),
    None: frozenset({"__keras_tensor__"}),
}
# What files written before the row-sparse optimizer (skembedrec._optimization) contain
# instead of its RatingModel and RowSparseAdam; they still load.
LEGACY_KERAS_CLASSES: dict[str | None, frozenset[str]] = {
    "keras.src.models.functional": frozenset({"Functional"}),
    "keras.optimizers": frozenset({"Adam"}),
}

# Every integer in a layer's config must have a rule here, keyed by class name and config
# key, or the file is refused: a size added to a layer without a rule cannot slip through.
#   "ids": the row count of an id-indexed table, n_users + 1 or n_items + 1 of the file;
#   "width": a number of columns, at most Limits.width; "column": 0, 1 or 2 (user, item,
#   day); "day": a day number, not a size.
SIZE_RULES: dict[tuple[str, str], str] = {
    ("PenalizedEmbedding", "input_dim"): "ids",
    ("PenalizedEmbedding", "output_dim"): "width",
    ("ImplicitFeedback", "n_rows"): "ids",
    ("ImplicitFeedback", "n_columns"): "ids",
    ("ImplicitFeedback", "output_dim"): "width",
    ("FeatureLookup", "n_rows"): "ids",
    ("FeatureLookup", "n_features"): "width",
    ("PadColumns", "width"): "width",
    ("MemberDots", "n_members"): "width",
    ("IdColumn", "column"): "column",
    ("UserDrift", "n_rows"): "ids",
    ("UserDrift", "first_day"): "day",
    ("UserDrift", "last_day"): "day",
    ("TimeBinBias", "n_bins"): "width",
    ("TimeBinBias", "first_day"): "day",
    ("TimeBinBias", "last_day"): "day",
    ("TimeBinBias", "days_per_bin"): "width",
    ("DampedBias", "n_rows"): "ids",
    ("Dense", "units"): "width",
    ("Concatenate", "axis"): "any",
}

# The weights a layer allocates when built, in values, from its (already bounded) config.
_WEIGHT_VALUES: dict[str, Callable[[dict], int]] = {
    "PenalizedEmbedding": lambda c: c["input_dim"] * c["output_dim"],
    "ImplicitFeedback": lambda c: (c["n_rows"] + c["n_columns"]) * c["output_dim"],
    "FeatureLookup": lambda c: c["n_rows"] * c["n_features"],
    "UserDrift": lambda c: 2 * c["n_rows"],
    "TimeBinBias": lambda c: c["n_bins"] + 2,
    "DampedBias": lambda c: 3 * c["n_rows"],
}
# Every declared value is written to the weights file as float32 (Adam's moments besides):
# the file holds at least this many bytes per value.
_BYTES_PER_VALUE = 4


def package_classes() -> dict[str, type]:
    """The package's own Keras classes by name (imported here: it also registers them)."""
    from ._layers import LAYER_CLASSES
    from ._optimization import KERAS_CLASSES

    return {cls.__name__: cls for cls in LAYER_CLASSES + KERAS_CLASSES}


def model_bytes(model: keras.Model) -> bytes:
    """The model as the bytes of a ``.keras`` file (config, weights, optimizer state)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as file:
            return file.read()


def load_model_bytes(data: bytes | memoryview, path: str, *, id_rows: Iterable[int],
                     limits: Limits, input_width: int | None = None,
                     verified: bool = False) -> keras.Model:
    """The model of :func:`model_bytes`, after the checks of the module docstring.

    ``id_rows`` are the allowed row counts of id-indexed tables (``n_users + 1`` and
    ``n_items + 1`` of the vocabularies stored with the model); ``path`` names the file in
    errors. With ``input_width`` (2, or 3 with times), the loaded model must also hold
    finite weights only and rate every row of its tables with finite numbers.
    ``verified``: ``data`` was checked against a digest (:class:`~._archive.ZipReader`).
    """
    rows = tuple(id_rows)
    # Views into ``data``, not copies: the weights are checked where they lie.
    members = read_zip(data, path, _MEMBERS, limits, what="its Keras model", verified=verified)
    config = read_json(members[_CONFIG], path, f"the Keras {_CONFIG}", limits)
    read_json(members[_METADATA], path, f"the Keras {_METADATA}", limits)
    check_config(config, path, id_rows=set(rows), limits=limits,
                 weights_bytes=len(members[_WEIGHTS]))
    check_hdf5(members[_WEIGHTS], path, f"the Keras {_WEIGHTS}")
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "model.keras")
        with open(model_path, "wb") as out:
            out.write(data)
        try:
            model = keras.saving.load_model(model_path, compile=True, safe_mode=True)
        except Exception as exc:
            raise ValueError(
                f"Could not load the Keras model stored in {path!r} (corrupted, or written by "
                f"an incompatible Keras): {type(exc).__name__}: {exc}"
            ) from exc
    if input_width is not None:
        _check_loaded(model, path, rows, input_width)
    return model


def _check_loaded(model: keras.Model, path: str, rows: tuple[int, ...],
                  input_width: int) -> None:
    """Refuse a model with non-finite weights, or that cannot rate every table row."""
    for weight in model.weights:
        if not np.isfinite(keras.ops.convert_to_numpy(weight.value)).all():
            raise refuse(path, f"the Keras weight {weight.path!r} holds non-finite values")
    shapes = [tuple(tensor.shape) for tensor in model.inputs]
    if shapes != [(None, input_width)]:
        raise refuse(path, f"its Keras model takes inputs of shape {shapes}, not the "
                     f"(n, {input_width}) id codes the estimator serves it")
    # Every row of the user and item tables at least once (the codes of the smaller
    # vocabulary wrap around); day 0 with times.
    codes = np.arange(max(rows), dtype=np.int32)
    probe = np.zeros((len(codes), input_width), dtype=np.int32)
    probe[:, 0], probe[:, 1] = codes % rows[0], codes % rows[-1]
    try:
        output = keras.ops.convert_to_numpy(model(probe, training=False))
    except Exception as exc:
        raise ValueError(f"The Keras model stored in {path!r} cannot rate pairs of ids "
                         f"(corrupted): {type(exc).__name__}: {exc}") from exc
    if output.shape not in ((len(codes),), (len(codes), 1)) or not np.isfinite(output).all():
        raise refuse(path, f"its Keras model rates pairs of ids with an output of shape "
                     f"{output.shape}, finite: {bool(np.isfinite(output).all())}")


def check_config(config: Any, path: str, *, id_rows: set[int], limits: Limits,
                 weights_bytes: int) -> None:
    """Refuse classes outside the allow-list and layer sizes outside :data:`SIZE_RULES`."""
    package = package_classes()
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if "class_name" in node or "module" in node:
            _check_class(node, package, path)
        if node.get("function_type") == "lambda" or "__lambda__" in node.values():
            raise refuse(path, "its Keras model config contains a serialised Python lambda")
        stack.extend(node.values())
    layers = config.get("config", {}).get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{path!r} is corrupted: its Keras model config lists no layers.")
    values = sum(_check_layer_sizes(layer, path, id_rows, limits) for layer in layers)
    if values * _BYTES_PER_VALUE > weights_bytes:
        raise refuse(path, f"its Keras model config declares {values} weight values, more "
                     f"than its weights file of {weights_bytes} bytes holds")


def _check_class(node: dict, package: dict[str, type], path: str) -> None:
    module, name = node.get("module"), node.get("class_name")
    if not isinstance(name, str) or not isinstance(module, str | None):
        raise refuse(path, f"its Keras model config names a class {_short(name)} in the "
                     f"module {_short(module)}, which are not strings")
    if name in ALLOWED_KERAS_CLASSES.get(module, ()) or name in LEGACY_KERAS_CLASSES.get(
            module, ()):
        return
    cls = package.get(name)
    if (cls is not None and module == cls.__module__
            and node.get("registered_name") == f"{_PACKAGE_PREFIX}{name}"):
        return
    raise refuse(
        path, f"its Keras model config contains the class {name!r} (module {module!r}), "
        "which skembedrec networks never use"
        + (" (a Lambda layer carries arbitrary Python code)" if name == "Lambda" else "")
        + "; nothing was run")


def _check_layer_sizes(layer: Any, path: str, id_rows: set[int], limits: Limits) -> int:
    """Check one layer's integer config values; returns the weight values it will allocate."""
    if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
        raise ValueError(f"{path!r} is corrupted: a layer of its Keras model config is not a "
                         "mapping.")
    name, config = layer.get("class_name"), layer["config"]
    for key, value in config.items():
        rule = SIZE_RULES.get((str(name), key))
        if rule is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise refuse(path, f"the layer {_short(config.get('name'))} ({name}) declares "
                         f"{key}={_short(value)}, which must be an integer")
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        where = f"the layer {_short(config.get('name'))} ({name}) declares {key}={value}"
        if rule is None:
            raise refuse(path, f"{where}, a size skembedrec networks never set")
        if rule == "ids" and value not in id_rows:
            raise refuse(path, f"{where}; its tables must have as many rows as the file's "
                         f"vocabularies plus one ({sorted(id_rows)})")
        if rule == "width" and not 1 <= value <= limits.width:
            raise refuse(path, f"{where}, outside 1..{limits.width} (the limit 'width')")
        if rule == "column" and value not in (0, 1, 2):
            raise refuse(path, f"{where}; the input has columns 0, 1 and 2 only")
        if rule == "day" and not -(2**31) <= value < 2**31:
            raise refuse(path, f"{where}, outside the int32 day numbers")
    count = _WEIGHT_VALUES.get(str(name))
    try:
        return int(count(config)) if count is not None else 0
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{path!r} is corrupted: the layer {config.get('name')!r} lacks a "
                         f"size ({exc}).") from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
