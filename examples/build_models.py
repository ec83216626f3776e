"""Builds the demo and benchmark models in code, with no downloads.

* ``digits``: a logistic-regression classifier trained on scikit-learn's bundled digits
  dataset (8x8 images → 64 floats), converted with skl2onnx. Input ``input`` float32
  [N, 64]; outputs ``label`` int64 [N] and ``probabilities`` float32 [N, 10]. The held-out
  test split is saved beside it (``digits_test.npz``).
* ``mlp``: a dense ReLU network built with onnx.helper (seeded random weights), default
  256 → 1024 → 1024 → 10. Input ``input`` float32 [N, 256]; output ``logits``.
* ``cnn``: a small convolutional network (1x28x28 → conv 8@3x3 → relu → maxpool → dense 10).

Usage: ``python examples/build_models.py [--out var] [--force]`` (idempotent).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OPSET = 17


def build_digits(path: Path, seed: int = 0) -> float:
    """Trains, converts and writes the digits classifier; returns its test accuracy."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(x_train, y_train)
    onx = to_onnx(clf, x_train[:1], options={id(clf): {"zipmap": False}}, target_opset={"": OPSET, "ai.onnx.ml": 3})
    onx.graph.input[0].name = "input"
    for node in onx.graph.node:
        node.input[:] = ["input" if name == "X" else name for name in node.input]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onx.SerializeToString())
    np.savez(path.with_name("digits_test.npz"), x=x_test, y=y_test.astype(np.int64))
    return float(clf.score(x_test, y_test))


def build_mlp(path: Path, sizes: tuple[int, ...] = (256, 1024, 1024, 10), seed: int = 0) -> None:
    """A Gemm+Relu stack with seeded weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    current = "input"
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        b = (rng.standard_normal(n_out) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(sizes) - 2
        out = "logits" if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [out if last else f"z{i}"]))
        if not last:
            nodes.append(helper.make_node("Relu", [f"z{i}"], [out]))
        current = out
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", sizes[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", sizes[-1]])],
        inits,
    )
    _save(graph, path)


def _save(graph: object, path: Path) -> None:
    """Wraps a graph in a checked model (opset 17, IR 9: any recent ONNX Runtime) and writes it."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())


def build_cnn(path: Path, seed: int = 0) -> None:
    """Conv(1→8, 3x3) → Relu → MaxPool(2) → Flatten → Gemm(8*13*13 → 10)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv_w = (rng.standard_normal((8, 1, 3, 3)) / 3).astype(np.float32)
    conv_b = np.zeros(8, np.float32)
    fc_w = (rng.standard_normal((8 * 13 * 13, 10)) / np.sqrt(8 * 13 * 13)).astype(np.float32)
    fc_b = np.zeros(10, np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"]),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((conv_w, "conv_w"), (conv_b, "conv_b"), (fc_w, "fc_w"), (fc_b, "fc_b"))]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    _save(graph, path)


def ensure_demo_models(out: Path = ROOT / "var", force: bool = False) -> dict[str, Path]:
    """Builds whatever is missing under ``out``; returns the model paths."""
    paths = {
        "digits": out / "demo" / "digits.onnx",
        "mlp": out / "bench" / "mlp_256_1024_1024_10.onnx",
        "mlp_small": out / "bench" / "mlp_64_256_256_10.onnx",
        "cnn": out / "bench" / "cnn_28.onnx",
    }
    if force or not paths["digits"].exists() or not paths["digits"].with_name("digits_test.npz").exists():
        accuracy = build_digits(paths["digits"])
        print(f"built {paths['digits']} (test accuracy {accuracy:.3f})")
    if force or not paths["mlp"].exists():
        build_mlp(paths["mlp"])
        print(f"built {paths['mlp']}")
    if force or not paths["mlp_small"].exists():
        build_mlp(paths["mlp_small"], sizes=(64, 256, 256, 10))
        print(f"built {paths['mlp_small']}")
    if force or not paths["cnn"].exists():
        build_cnn(paths["cnn"])
        print(f"built {paths['cnn']}")
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "var")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    ensure_demo_models(args.out, args.force)
