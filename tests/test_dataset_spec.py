"""The data and train sections as the compiler sees them: located errors for bad sections, the
transforms' shape rules agreeing with torchvision, and what gets generated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from specc.compiler import analyze, generate
from specc.errors import SpecErrors
from specc.format import format_python
from specc.spec.document import json_schema
from tests.mnist_data import REPO, build_json, build_spec, import_training

LENET = (REPO / "specs" / "lenet.yaml").read_text()
MODEL = """specc: 1
name: Net
input: {shape: [1, 32, 32]}
layers:
  - {op: conv2d, out_channels: 4, kernel_size: 5}
  - flatten
  - {op: linear, out_features: 10}
"""


def errors(text: str, tmp_path: Path) -> str:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(SpecErrors) as caught:
        analyze(spec)
    return caught.value.format().replace(str(spec), "bad.yaml")


BAD = {
    "mnist_into_32x32": (
        MODEL + "data:\n  source: {type: mnist}\n",
        "bad.yaml:9:11: error[E201]: the data gives 1x28x28 samples, but the model's input is 1x32x32\n"
        "  note: bad.yaml:3:8: the model's input is declared here\n"
        "  hint: add `{op: pad, padding: 2}` or `{op: resize, size: [32, 32]}` to data.transforms.train",
    ),
    "wrong_pad": (
        MODEL + "data:\n  source: {type: mnist}\n  transforms:\n    train: [{op: pad, padding: 1}, to_tensor]\n",
        "bad.yaml:11:12: error[E201]: data.transforms.train gives 1x30x30 samples, but the model's input is 1x32x32\n"
        "  note: bad.yaml:3:8: the model's input is declared here\n"
        "  hint: add `{op: pad, padding: 1}` or `{op: resize, size: [32, 32]}` to data.transforms.train",
    ),
    "rgb_into_gray": (
        MODEL + "data:\n  source: {type: cifar10}\n",
        "bad.yaml:9:11: error[E201]: the data gives 3x32x32 samples, but the model's input is 1x32x32\n"
        "  note: bad.yaml:3:8: the model's input is declared here\n"
        "  hint: add `{op: grayscale, num_output_channels: 1}` to data.transforms.train",
    ),
    "classes": (
        MODEL.replace("out_features: 10", "out_features: 100") + "data:\n  source: {type: cifar10}\n"
        "  transforms: {train: [grayscale, to_tensor]}\n",
        "bad.yaml:7:5: error[E201]: the model outputs 100 class scores per sample, but the data has 10 classes\n"
        "  note: bad.yaml:9:11: the data is the CIFAR10 dataset (torchvision)",
    ),
    "normalize_before_to_tensor": (
        MODEL + "data:\n  source: {type: mnist}\n  transforms:\n"
        "    train: [{op: pad, padding: 2}, {op: normalize, mean: [0.5], std: [0.5]}, to_tensor]\n",
        "bad.yaml:11:36: error[E205]: `normalize` needs float tensors, but here the samples are PIL images\n"
        "  hint: put `to_tensor` before it",
    ),
    "no_to_tensor": (
        MODEL + "data:\n  source: {type: mnist}\n  transforms:\n    train: [{op: pad, padding: 2}]\n",
        "bad.yaml:11:12: error[E205]: data.transforms.train gives PIL images, but the model takes float32 tensors\n"
        "  note: bad.yaml:3:8: the model's input is declared here\n"
        "  hint: add `to_tensor` to data.transforms.train",
    ),
    "normalize_channels": (
        MODEL + "data:\n  source: {type: mnist}\n  transforms:\n    train: [{op: pad, padding: 2}, to_tensor,"
        " {op: normalize, mean: [0.5, 0.5, 0.5], std: [0.5]}]\n",
        "bad.yaml:11:69: error[E201]: normalize: `mean` has 3 values, but the images have 1 channel",
    ),
    "crop_too_big": (
        MODEL + "data:\n  source: {type: mnist}\n  transforms:\n    train: [{op: random_crop, size: 32}, to_tensor]\n",
        "bad.yaml:11:37: error[E202]: random_crop: crop size 32x32 is larger than the (padded) image 28x28\n"
        "  hint: set `pad_if_needed: true`, or add padding",
    ),
    "image_transform_on_csv": (
        MODEL.replace("[1, 32, 32]", "[4]").replace("  - {op: conv2d, out_channels: 4, kernel_size: 5}\n", "")
        + "data:\n  source: {type: csv, train: iris.csv, label: species, features: [a, b, c, d]}\n"
        "  transforms: {train: [random_horizontal_flip]}\n",
        "bad.yaml:9:24: error[E104]: `random_horizontal_flip` is an image transform, but this data gives feature "
        "vectors (4)\n  hint: tabular data takes no transforms",
    ),
    "unknown_names": (
        MODEL + "data:\n  source: {type: mnsit}\n  transforms: {train: [to_tensr]}\n"
        "train:\n  loss: crossentropy\n  optimizer: {type: sgd, lr: 0.1, momentun: 0.9}\n  scheduler: step\n",
        "bad.yaml:9:11: error[E104]: `source`: unknown data source `mnsit` (did you mean `mnist`?)\n"
        "bad.yaml:10:24: error[E104]: `train`: unknown transform `to_tensr` (did you mean `to_tensor`?)\n"
        "bad.yaml:12:9: error[E104]: `loss`: unknown loss `crossentropy` (did you mean `cross_entropy`?)\n"
        "bad.yaml:13:35: error[E101]: unknown key `momentun` in `train.optimizer`\n"
        "  hint: did you mean `momentum`?\n"
        "bad.yaml:14:14: error[E104]: `scheduler`: scheduler `step` has required parameters: "
        "write {type: step, step_size: ...}",
    ),
    "metric_for_another_task": (
        MODEL + "data:\n  source: {type: mnist}\n  transforms: {train: [{op: pad, padding: 2}, to_tensor]}\n"
        "train:\n  metrics: [accuracy, mae]\n",
        "bad.yaml:12:23: error[E104]: metric `mae` does not apply to classification (the loss is `cross_entropy`)",
    ),
    "missing_split": (
        MODEL + "data:\n  source: {type: fake_data, image_size: [1, 32, 32]}\n  val: val\n",
        "bad.yaml:10:8: error[E104]: `val: val` names a split that random images (torchvision FakeData) does not "
        "have (it has train, test)\n  hint: use a holdout of the training split instead: `val: {fraction: 0.1}`",
    ),
    "warmup_with_onecycle": (
        MODEL + "data:\n  source: {type: fake_data, image_size: [1, 32, 32]}\n"
        "train:\n  scheduler: onecycle\n  warmup: {epochs: 2}\n",
        "bad.yaml:12:11: error[E104]: `warmup` cannot precede the `onecycle` scheduler\n"
        "  hint: onecycle has its own warmup (pct_start); plateau reacts to the loss, not to epochs",
    ),
    "train_without_data": (
        MODEL + "train: {epochs: 3}\n",
        "bad.yaml:8:8: error[E103]: a `train` section needs a `data` section to train on",
    ),
    "bad_class_path": (
        MODEL + "data:\n  source: {type: custom, class: 'os.system(1)'}\n",
        "bad.yaml:9:33: error[E104]: `class`: not a dotted import path of identifiers (like `mypkg.data.Faces`)",
    ),
    "tensor_file_suffix": (
        MODEL + "data:\n  source: {type: tensors, train: data.pkl}\n",
        "bad.yaml:9:34: error[E104]: `train`: tensor files are `.npz` (numpy) or `.pt`/`.pth` "
        "(torch.save of a dict of tensors)",
    ),
    "nesterov_without_momentum": (
        MODEL + "data:\n  source: {type: fake_data, image_size: [1, 32, 32]}\n"
        "train:\n  optimizer: {type: sgd, nesterov: true}\n",
        "bad.yaml:11:14: error[E104]: `optimizer`: nesterov momentum needs `momentum` > 0 and `dampening` 0",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_sections_get_located_errors(case: str, tmp_path: Path) -> None:
    text, expected = BAD[case]
    assert errors(text, tmp_path) == expected


# (transforms, the sample shape torchvision produces from a 3x20x30 image): the compiler must agree,
# since the build fails unless its shape equals the model input, and the runtime must agree too.
PIPELINES: list[tuple[list[Any], list[int]]] = [
    ([{"op": "resize", "size": 16}], [3, 16, 24]),
    ([{"op": "resize", "size": [10, 12]}], [3, 10, 12]),
    ([{"op": "center_crop", "size": 12}], [3, 12, 12]),
    ([{"op": "center_crop", "size": [40, 8]}], [3, 40, 8]),
    ([{"op": "random_crop", "size": 24, "padding": 2}], [3, 24, 24]),
    ([{"op": "random_crop", "size": 32, "pad_if_needed": True}], [3, 32, 32]),
    ([{"op": "random_resized_crop", "size": [8, 6]}], [3, 8, 6]),
    ([{"op": "pad", "padding": [1, 2]}], [3, 24, 32]),
    ([{"op": "pad", "padding": [1, 2, 3, 4]}], [3, 26, 34]),
    ([{"op": "grayscale"}, "random_vertical_flip"], [1, 20, 30]),
    ([{"op": "grayscale", "num_output_channels": 3}, {"op": "random_rotation", "degrees": 15}], [3, 20, 30]),
    (["random_horizontal_flip", {"op": "color_jitter", "brightness": 0.3, "hue": 0.1}], [3, 20, 30]),
    ([{"op": "gaussian_blur", "kernel_size": 3}, "trivial_augment_wide"], [3, 20, 30]),
    (["to_image", {"op": "resize", "size": 10}, "to_tensor", "random_erasing"], [3, 10, 15]),
]


@pytest.mark.parametrize("steps,shape", PIPELINES, ids=lambda v: str(v) if isinstance(v, list) else "")
def test_transform_shapes_agree_with_torchvision(steps: list[Any], shape: list[int], tmp_path: Path) -> None:
    tail = [] if "to_tensor" in steps else ["to_tensor"]
    spec = {
        "specc": 1,
        "name": "Net",
        "input": {"shape": shape},
        "layers": ["flatten", {"op": "linear", "out_features": 3}],
        "data": {
            "source": {"type": "fake_data", "size": 4, "test_size": 2, "image_size": [3, 20, 30], "num_classes": 3},
            "transforms": {"train": [*steps, *tail, {"op": "normalize", "mean": [0.5], "std": [0.25]}]},
        },
    }
    data = import_training(build_json(spec, tmp_path)).dataset
    sets = data.build_datasets("unused", False)
    for which, transform in (("train", data.train_batch_transform()), ("val", data.eval_batch_transform())):
        x, _ = sets[which][0]
        batch = transform(torch.stack([x, x]))
        assert tuple(batch.shape) == (2, *shape) and batch.dtype == torch.float32, which


def test_eval_pipeline_drops_augmentation_and_centres_crops(tmp_path: Path) -> None:
    spec = {
        "specc": 1,
        "name": "Net",
        "input": {"shape": [3, 24, 24]},
        "layers": ["flatten", {"op": "linear", "out_features": 3}],
        "data": {
            "source": {"type": "fake_data", "size": 4, "image_size": [3, 40, 50], "num_classes": 3},
            "transforms": {
                "train": [
                    {"op": "random_resized_crop", "size": 24},
                    "random_horizontal_flip",
                    {"op": "color_jitter", "brightness": 0.4},
                    "to_tensor",
                    {"op": "normalize", "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]},
                    "random_erasing",
                ]
            },
        },
    }
    data = import_training(build_json(spec, tmp_path)).dataset
    shown = [repr(t) for t in data.eval_transform().transforms]
    assert [s.split("(")[0] for s in shown] == ["Resize", "CenterCrop", "ToImage"]
    assert "size=[27]" in shown[0]  # 24 / 0.875, the usual evaluation resize
    # random_erasing follows normalize, so nothing moves onto batches for training; eval ends in normalize.
    assert data.train_batch_transform() is None
    assert [type(t).__name__ for t in data.eval_batch_transform().transforms] == ["ToDtype", "Normalize"]


def test_lenet_builds_three_deterministic_files_with_one_header(tmp_path: Path) -> None:
    first = build_spec(LENET, tmp_path, name="lenet.yaml", out="a")
    second = build_spec(LENET, tmp_path, name="lenet.yaml", out="a2")
    names = sorted(p.name for p in first.iterdir() if p.suffix == ".py")
    assert names == ["dataset.py", "model.py", "train.py"]
    headers = set()
    for name in names:
        text = (first / name).read_text()
        assert text == (second / name).read_text().replace("-o a2", "-o a")
        assert format_python(text) == text  # black-formatted
        headers.add("\n".join(text.splitlines()[:3]))
        compile(text, name, "exec")
    assert len(headers) == 1
    assert "import specc" not in (first / "train.py").read_text() + (first / "dataset.py").read_text()


def test_a_spec_without_data_generates_only_the_model(tmp_path: Path) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text(MODEL)
    files = generate(analyze(spec))
    assert "model.py" in files and "dataset.py" not in files and "train.py" not in files


def test_the_schema_describes_the_sections() -> None:
    schema = json_schema()
    assert {"data", "train"} <= set(schema["properties"])
    text = json.dumps(schema)
    for name in ("MnistSource", "PadTransform", "CrossEntropyLoss", "SgdOptimizer", "CosineScheduler", "TopKMetric"):
        assert name in text
