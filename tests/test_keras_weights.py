"""Keras applications as specs: their figures, and their weights in both backends.

Each Keras model is built once per module (``weights=None``, seeded), with non-trivial BN
moving statistics, and compared with the generated torch and flax models that received its
weights through ``inceptdsl.weights.from_keras``.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from flax import nnx  # noqa: E402
from helpers import relative_diff  # noqa: E402

import inceptdsl  # noqa: E402
from inceptdsl.codegen import load_source  # noqa: E402
from inceptdsl.weights import KerasImportError, from_keras  # noqa: E402

SPECS = {
    "inception_v3_keras": "InceptionV3",
    "inception_resnet_v2_keras": "InceptionResNetV2",
    "xception_keras": "Xception",
}
_MODELS: dict[str, keras.Model] = {}


def keras_model(spec: str) -> keras.Model:
    """The Keras application behind ``spec``: seeded, with random BN statistics (cached)."""
    if spec not in _MODELS:
        keras.utils.set_random_seed(0)
        model = getattr(keras.applications, SPECS[spec])(weights=None)
        rng = np.random.default_rng(1)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(rng.normal(0, 0.2, layer.moving_mean.shape))
                layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
                layer.beta.assign(rng.normal(0, 0.2, layer.beta.shape))
                if layer.gamma is not None:
                    layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
        _MODELS[spec] = model
    return _MODELS[spec]


def batch() -> np.ndarray:
    return np.random.default_rng(2).normal(size=(2, 299, 299, 3)).astype(np.float32)


def torch_output(spec: str, state: dict) -> np.ndarray:
    model = inceptdsl.build(spec, "torch")
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()},
                          strict=True)
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(batch()).permute(0, 3, 1, 2)).numpy()


@pytest.mark.parametrize("size", [7, 8, 74, 75])
def test_same_pools_equal_keras_pools_at_odd_and_even_sizes(size, tmp_path):
    layers = {"maxpool(3, stride=2, pad='same')": ("max_pool", 2),
              "avgpool(3, stride=2, pad='same', count_include_pad=false)": ("average_pool", 2),
              "avgpool(3, stride=1, pad='same', count_include_pad=false)": ("average_pool", 1)}
    x = np.random.default_rng(size).normal(size=(2, size, size, 3)).astype(np.float32)
    for layer, (pool, stride) in layers.items():
        path = tmp_path / "pool.yaml"
        path.write_text(f"format: 1\nname: pool\ninput: [3, {size}, {size}]\n"
                        f"body:\n  - p: {layer}\n  - {layer}\n")
        expected = np.asarray(getattr(keras.ops, pool)(
            getattr(keras.ops, pool)(x, 3, stride, padding="same"), 3, stride, padding="same"))
        model = inceptdsl.build(str(path), "torch")
        with torch.no_grad():
            got = model(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        assert relative_diff(expected, got) <= 1e-6, layer
        module = load_source(inceptdsl.compile(str(path), backend="flax"), f"pool_{size}")
        assert relative_diff(expected, module.create_model()(x)) <= 1e-6, layer


@pytest.mark.parametrize("spec", SPECS)
def test_summary_counts_equal_keras(spec):
    report = inceptdsl.analyze(spec)
    model = keras_model(spec)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    bn_layers = sum(isinstance(layer, keras.layers.BatchNormalization)
                    for layer in model.layers)
    assert report.params == trainable
    assert report.params + report.buffers == model.count_params() + bn_layers
    assert report.output == [1000]


@pytest.mark.parametrize("spec", SPECS)
def test_keras_weights_give_keras_outputs_in_torch_and_flax(spec, tmp_path):
    model = keras_model(spec)
    expected = np.asarray(model.predict(batch(), verbose=0))
    state = from_keras(model, spec)
    assert relative_diff(expected, torch_output(spec, state)) <= 1e-4

    module = load_source(inceptdsl.compile(spec, backend="flax"), f"flax_{spec}_keras")
    flax_model = module.load_torch_state_dict(module.create_model(), state)
    flax_model.eval()
    got = nnx.jit(lambda m, v: m(v))(flax_model, batch())
    assert relative_diff(expected, np.asarray(got)) <= 1e-4

    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    from_file = from_keras(path, spec)
    assert from_file.keys() == state.keys()
    assert all(np.array_equal(from_file[k], state[k]) for k in state)
    assert relative_diff(expected, torch_output(spec, from_file)) <= 1e-4


TINY = """format: 1
name: tiny_keras
input: [3, 16, 16]
body:
  - conv: conv(4, 3, stride=2, pad='same')
  - bn: batchnorm(eps=0.001, scale=false)
  - relu
  - sep:
      - conv(4, 3, pad=1, groups=4, bias=false)
      - conv(6, 1)
  - dw: conv(12, 3, pad=1, groups=6)
  - pool: global_avgpool
  - flatten
  - fc: linear(3)
  - softmax
"""


def test_a_keras_file_imports_like_the_model_it_holds(tmp_path):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    x = keras.layers.BatchNormalization(scale=False)(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.SeparableConv2D(6, 3, padding="same")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    tiny = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    tiny.layers[2].moving_mean.assign(np.linspace(-1, 1, 4))
    (tmp_path / "tiny.yaml").write_text(TINY)
    spec = str(tmp_path / "tiny.yaml")
    tiny.save(tmp_path / "tiny.keras")
    state = from_keras(tmp_path / "tiny.keras", spec)
    assert sorted(state) == sorted(inceptdsl.build(spec, "torch").state_dict())
    images = np.random.default_rng(4).normal(size=(2, 16, 16, 3)).astype(np.float32)
    model = inceptdsl.build(spec, "torch").eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    with torch.no_grad():
        got = model(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
    assert relative_diff(np.asarray(tiny.predict(images, verbose=0)), got) <= 1e-5


def test_a_dense_layer_after_a_flattened_map_gets_its_rows_in_torch_order(tmp_path):
    class Dense:  # the class name is what pairs it; no Keras model needed
        name = "dense"

        def __init__(self, weights):
            self.weights = weights

    rng = np.random.default_rng(5)
    kernel, bias = rng.normal(size=(3 * 4 * 5, 2)), rng.normal(size=2)
    (tmp_path / "flat.yaml").write_text("format: 1\nname: flat\ninput: [3, 4, 5]\n"
                                        "body:\n  - flatten\n  - dropout(0.1)\n"
                                        "  - fc: linear(2)\n")
    model = type("Model", (), {"layers": [Dense([kernel, bias])]})()
    state = from_keras(model, str(tmp_path / "flat.yaml"))
    x = rng.normal(size=(1, 3, 4, 5))
    keras_out = x.transpose(0, 2, 3, 1).reshape(1, -1) @ kernel + bias  # NHWC flatten
    torch_out = x.reshape(1, -1) @ state["fc.weight"].T + state["fc.bias"]
    assert np.allclose(keras_out, torch_out, atol=1e-5)


def test_import_is_strict_and_names_the_first_mismatch():
    model = keras_model("xception_keras")
    with pytest.raises(KerasImportError, match="'block1_conv1' .*Conv2D number 1: Keras "
                                               "weight of shape"):
        from_keras(model, inceptdsl.load("xception_keras", set={"width": 0.5}))
    with pytest.raises(KerasImportError, match="BatchNormalization number 1: the Keras layer "
                                               "has 4 weights, the spec expects 3"):
        from_keras(model, "inception_v3_keras")


def test_cli_writes_the_state_dict_and_reports_mismatches(tmp_path):
    model = keras_model("xception_keras")
    path = tmp_path / "xception.weights.h5"
    model.save_weights(path)
    out = tmp_path / "xception.npz"
    cli = [sys.executable, "-m", "inceptdsl.cli", "weights", "from-keras"]
    done = subprocess.run([*cli, str(path), "--spec", "xception_keras", "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with np.load(out) as saved:
        state = from_keras(model, "xception_keras")
        assert sorted(saved.files) == sorted(state)
        assert all(np.array_equal(saved[k], state[k]) for k in state)
    bad = subprocess.run([*cli, str(path), "--spec", "inception_v3_keras", "-o",
                          str(tmp_path / "bad.npz")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "error:" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.npz").exists()
    json.dumps(bad.stderr)
