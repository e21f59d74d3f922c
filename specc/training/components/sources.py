"""Data sources: torchvision datasets by name, image folders, CSV files, tensor files and a user's
own Dataset class. Each emits the body of dataset.py's `load_split(split, root, transform, download)`.

Paths in a spec are relative to the data root (`--data-root`, default `data.root`), and reach the
generated code only through `repr()`.
"""

from __future__ import annotations

import keyword
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from specc.ops.base import PosInt
from specc.training.base import DataPath as Path
from specc.training.base import Params, Sample, Source, SplitCode, code
from specc.training.registry import register

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,15}$")
_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Names load_split uses: a user's class must not shadow them.
_LOAD_SPLIT_NAMES = frozenset({"root", "split", "transform", "download", "os", "torch", "DataError", "exc"})


SampleShape = Annotated[list[PosInt], Field(min_length=1, max_length=8)]


def _dotted(value: str) -> str:
    if not _DOTTED.match(value):
        raise ValueError("not a dotted import path of identifiers (like `mypkg.data.Faces`)")
    parts = value.split(".")
    bad = [p for p in parts if keyword.iskeyword(p) or p.startswith("__")]
    if bad:
        raise ValueError(f"`{bad[0]}` cannot be part of an import path (a Python keyword or dunder)")
    if parts[-1] in _LOAD_SPLIT_NAMES:
        raise ValueError(f"a class called `{parts[-1]}` would shadow a variable of dataset.py; rename it")
    return value


def _arg_name(value: str) -> str:
    if not _ARG.match(value) or keyword.iskeyword(value) or value in ("root", "split", "transform"):
        raise ValueError(f"`{value}` cannot be a keyword argument here")
    return value


DottedName = Annotated[str, AfterValidator(_dotted)]
ArgName = Annotated[str, AfterValidator(_arg_name)]
ArgValue = int | float | bool | Annotated[str, Field(max_length=1024)] | list[int | float | bool | str] | None


def _files_code(files: dict[str, str]) -> list[str]:
    return [
        f"files = {code(files)}",
        "path = os.path.join(root, files[split])",
        "if not os.path.exists(path):",
        '    raise DataError(f"{split} data not found: {path} does not exist (set the data root with --data-root)")',
    ]


# ------------------------------------------------------------------------------- torchvision datasets


class DownloadParams(Params):
    download: bool = Field(
        default=True, description="Fetch the files if they are missing (nothing is fetched if present)."
    )


class _Torchvision(Source):
    """A torchvision dataset with a `train=` flag (the MNIST and CIFAR families)."""

    Params = DownloadParams
    cls: ClassVar[str]  # the class in torchvision.datasets
    folder: ClassVar[tuple[str, ...]]  # where its files are, under the root
    shape: ClassVar[tuple[int, int, int]]
    classes: ClassVar[int]

    def sample(self, p: Any) -> Sample:
        return Sample(self.shape, "pil", True, self.classes)

    def download(self, p: DownloadParams) -> bool:
        return p.download

    def constructor(self) -> str:
        return f'datasets.{self.cls}(root, train=split == "train", transform=transform, download=download)'

    def load(self, p: Any) -> SplitCode:
        where = ", ".join(["root", *(repr(part) for part in self.folder)])
        return SplitCode(
            [
                "from torchvision import datasets",
                "",
                "try:",
                f"    return {self.constructor()}",
                "# torchvision raises RuntimeError for missing files, OSError for a failed download",
                "except (RuntimeError, OSError) as exc:",
                f"    raise DataError(missing_files({self.cls!r}, os.path.join({where}), download, exc)) from None",
            ],
            imports=frozenset({"import os"}),
            uses=frozenset({"missing_files"}),
        )


def _torchvision(cls_name: str, name: str, folder: tuple[str, ...], shape: tuple[int, int, int], classes: int) -> None:
    what = f"the {cls_name} dataset (torchvision)"
    register(
        type(
            cls_name,
            (_Torchvision,),
            {
                "name": name,
                "cls": cls_name,
                "folder": folder,
                "shape": shape,
                "classes": classes,
                "description": what,
                "torch_name": f"torchvision.datasets.{cls_name}",
                "summary": f"{cls_name}: {classes} classes of {'x'.join(map(str, shape))} images; splits train, test.",
                "__module__": __name__,
            },
        )
    )


_torchvision("MNIST", "mnist", ("MNIST", "raw"), (1, 28, 28), 10)
_torchvision("FashionMNIST", "fashion_mnist", ("FashionMNIST", "raw"), (1, 28, 28), 10)
_torchvision("KMNIST", "kmnist", ("KMNIST", "raw"), (1, 28, 28), 10)
_torchvision("CIFAR10", "cifar10", ("cifar-10-batches-py",), (3, 32, 32), 10)
_torchvision("CIFAR100", "cifar100", ("cifar-100-python",), (3, 32, 32), 100)


@register
class SVHN(_Torchvision):
    name = "svhn"
    cls = "SVHN"
    folder = ()
    shape = (3, 32, 32)
    classes = 10
    description = "the SVHN dataset (torchvision)"
    torch_name = "torchvision.datasets.SVHN"
    summary = "SVHN street-view digits: 10 classes of 3x32x32 images; splits train, test (needs scipy)."

    def constructor(self) -> str:
        return "datasets.SVHN(root, split=split, transform=transform, download=download)"


class FakeDataParams(Params):
    size: PosInt = Field(default=1000, description="Number of training images.")
    test_size: PosInt = Field(default=200, description="Number of test images.")
    image_size: Annotated[list[PosInt], Field(min_length=3, max_length=3)] = Field(default=[3, 224, 224])
    num_classes: Annotated[int, Field(ge=2, le=100_000)] = 10


@register
class FakeData(Source):
    name = "fake_data"
    description = "random images (torchvision FakeData)"
    torch_name = "torchvision.datasets.FakeData"
    summary = "Random images with random labels, made on the fly: for smoke tests and benchmarks."
    Params = FakeDataParams

    def sample(self, p: FakeDataParams) -> Sample:
        return Sample(tuple(p.image_size), "pil", True, p.num_classes)

    def load(self, p: FakeDataParams) -> SplitCode:
        common = f"image_size={code(tuple(p.image_size))}, num_classes={p.num_classes}, transform=transform"
        return SplitCode(
            [
                "from torchvision import datasets",
                "",
                'if split == "train":',
                f"    return datasets.FakeData(size={p.size}, {common})",
                f"return datasets.FakeData(size={p.test_size}, {common}, random_offset={p.size})",
            ]
        )


# -------------------------------------------------------------------------------------- image folders


class ImageFolderParams(Params):
    train: Path = Field(default="train", description="Folder of the training images, one sub-folder per class.")
    val: Path | None = Field(default=None, description="Folder of the validation images, if any.")
    test: Path | None = Field(default=None, description="Folder of the test images, if any.")


@register
class ImageFolder(Source):
    name = "image_folder"
    description = "images in class folders (torchvision ImageFolder)"
    torch_name = "torchvision.datasets.ImageFolder"
    summary = "Images in `<root>/<train>/<class>/*.png|jpg`, read as RGB; classes are the sorted folder names."
    Params = ImageFolderParams

    def splits(self, p: ImageFolderParams) -> tuple[str, ...]:
        return tuple(s for s in ("train", "val", "test") if getattr(p, s) is not None)

    def sample(self, p: ImageFolderParams) -> Sample:
        return Sample((3, None, None), "pil", True, None)

    def load(self, p: ImageFolderParams) -> SplitCode:
        folders = {s: getattr(p, s) for s in self.splits(p)}
        return SplitCode(
            [
                "from torchvision import datasets",
                "",
                *_files_code(folders),
                "return datasets.ImageFolder(path, transform=transform)",
            ],
            imports=frozenset({"import os"}),
        )


# ---------------------------------------------------------------------------------------- tabular data


class CsvParams(Params):
    train: Path = Field(description="CSV file of the training rows (with a header line).")
    val: Path | None = None
    test: Path | None = None
    label: Annotated[str, Field(min_length=1, max_length=256)] = Field(description="The target column.")
    features: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(min_length=1)] | None = Field(
        default=None, description="The feature columns, in order; default: every column but the label."
    )
    classes: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(min_length=2)] | None = Field(
        default=None, description="Class names in the label column, in index order; default: labels are integers."
    )
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","

    @model_validator(mode="after")
    def _label_not_a_feature(self) -> CsvParams:
        if self.features is not None and self.label in self.features:
            raise ValueError(f"the label column `{self.label}` is also listed in `features`")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError("`classes` lists a class twice")
        return self


@register
class Csv(Source):
    name = "csv"
    description = "rows of a CSV file"
    torch_name = "csv.DictReader"
    summary = "A CSV file with a header: feature columns become a float32 vector, `label` the target."
    Params = CsvParams

    def splits(self, p: CsvParams) -> tuple[str, ...]:
        return tuple(s for s in ("train", "val", "test") if getattr(p, s) is not None)

    def sample(self, p: CsvParams) -> Sample:
        shape = (len(p.features),) if p.features is not None else (None,)
        return Sample(shape, "float", False, len(p.classes) if p.classes else None)

    def load(self, p: CsvParams) -> SplitCode:
        files = {s: getattr(p, s) for s in self.splits(p)}
        args = f"label={p.label!r}, features={code(p.features)}, classes={code(p.classes)}"
        if p.delimiter != ",":
            args += f", delimiter={p.delimiter!r}"
        return SplitCode(
            [*_files_code(files), f"return CsvDataset(path, {args}, transform=transform)"],
            imports=frozenset({"import csv", "import os"}),
            uses=frozenset({"CsvDataset"}),
        )


# ----------------------------------------------------------------------------------------- tensor files


def _tensor_file(value: str) -> str:
    if not value.endswith((".npz", ".pt", ".pth")):
        raise ValueError("tensor files are `.npz` (numpy) or `.pt`/`.pth` (torch.save of a dict of tensors)")
    return value


TensorPath = Annotated[Path, AfterValidator(_tensor_file)]
Key = Annotated[str, Field(min_length=1, max_length=256)]


class TensorsParams(Params):
    train: TensorPath = Field(description="`.npz` or `.pt` file holding the training samples and targets.")
    val: TensorPath | None = None
    test: TensorPath | None = None
    x_key: Key = Field(default="x", description="Name of the samples array, shape (N, ...).")
    y_key: Key = Field(default="y", description="Name of the targets array, shape (N,) or (N, ...).")
    sample_shape: SampleShape | None = Field(
        default=None, description="The shape of one sample, if known: checked against the model when compiling."
    )
    num_classes: PosInt | None = None


@register
class Tensors(Source):
    name = "tensors"
    description = "arrays in tensor files"
    torch_name = "numpy.load / torch.load(weights_only=True)"
    summary = "Samples and targets from `.npz` files or `.pt` files (a dict of tensors, loaded with weights_only)."
    Params = TensorsParams

    def splits(self, p: TensorsParams) -> tuple[str, ...]:
        return tuple(s for s in ("train", "val", "test") if getattr(p, s) is not None)

    def sample(self, p: TensorsParams) -> Sample:
        shape = tuple(p.sample_shape) if p.sample_shape is not None else None
        return Sample(shape, "any", shape is None or len(shape) == 3, p.num_classes)

    def load(self, p: TensorsParams) -> SplitCode:
        files = {s: getattr(p, s) for s in self.splits(p)}
        return SplitCode(
            [
                *_files_code(files),
                f"return TensorFileDataset(path, x_key={p.x_key!r}, y_key={p.y_key!r}, transform=transform)",
            ],
            imports=frozenset({"import os"}),
            uses=frozenset({"TensorFileDataset"}),
        )


# ---------------------------------------------------------------------------------- a user's own class


class CustomParams(Params):
    class_: DottedName = Field(
        alias="class",
        description="Import path of a torch Dataset class, called as Class(root=, split=, transform=, **args).",
    )
    args: dict[ArgName, ArgValue] = Field(default_factory=dict, description="More keyword arguments (literals).")
    splits: Annotated[list[Literal["train", "val", "test"]], Field(min_length=1)] = Field(default=["train"])
    sample_shape: SampleShape | None = None
    num_classes: PosInt | None = None

    @model_validator(mode="after")
    def _has_train(self) -> CustomParams:
        if "train" not in self.splits:
            raise ValueError("`splits` must include `train`")
        if len(set(self.splits)) != len(self.splits):
            raise ValueError("`splits` lists a split twice")
        return self


@register
class Custom(Source):
    name = "custom"
    description = "a user-defined Dataset class"
    torch_name = "torch.utils.data.Dataset"
    summary = "Your own Dataset class by import path; it must be importable (e.g. on PYTHONPATH)."
    Params = CustomParams

    def splits(self, p: CustomParams) -> tuple[str, ...]:
        return tuple(s for s in ("train", "val", "test") if s in p.splits)

    def sample(self, p: CustomParams) -> Sample:
        shape = tuple(p.sample_shape) if p.sample_shape is not None else None
        return Sample(shape, "any", shape is None or len(shape) == 3, p.num_classes)

    def load(self, p: CustomParams) -> SplitCode:
        module, _, cls = p.class_.rpartition(".")
        extra = "".join(f", {k}={code(v)}" for k, v in sorted(p.args.items()))
        return SplitCode(
            [
                "try:",
                f"    from {module} import {cls}",
                "except ImportError as exc:",
                f'    raise DataError(f"cannot import {p.class_}: {{exc}} (is its package on PYTHONPATH?)") from None',
                "",
                f"return {cls}(root=root, split=split, transform=transform{extra})",
            ]
        )


# ------------------------------------------------------------------------------------------------- text


class TextParams(Params):
    file: Path = Field(description="A UTF-8 text file (relative to the data root unless absolute).")
    vocab: Literal["chars", "bytes"] = Field(
        default="chars",
        description="`chars`: the file's distinct characters, sorted (the model's vocab_size must equal their "
        "number, checked at run time); `bytes`: its UTF-8 bytes, 256 tokens, no scan needed.",
    )
    val_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        default=0.1, description="The part of the text after the training part that is the `val` split."
    )
    test_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        default=0.0, description="The end of the text that is the `test` split."
    )
    stride: PosInt | None = Field(
        default=None,
        description="Tokens between the starts of training windows; default: the context (no overlap). "
        "Val/test windows never overlap.",
    )

    @model_validator(mode="after")
    def _fractions(self) -> TextParams:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must leave some text for training")
        return self


@register
class Text(Source):
    name = "text"
    description = "a text file"
    torch_name = "open(...).read()"
    summary = (
        "A text file as a token stream (characters or UTF-8 bytes) cut into windows of context + 1 tokens: "
        "x = window[:-1], y = window[1:] (int64); the context is the model's input length. Splits are "
        "consecutive parts of the text: train, then val, then test."
    )
    Params = TextParams

    def splits(self, p: TextParams) -> tuple[str, ...]:
        return ("train",) + (("val",) if p.val_fraction > 0 else ()) + (("test",) if p.test_fraction > 0 else ())

    def sample(self, p: TextParams) -> Sample:
        return Sample((None,), "any", False, 256 if p.vocab == "bytes" else None)

    def load(self, p: TextParams) -> SplitCode:
        return SplitCode(
            [
                f"path = os.path.join(root, {p.file!r})",
                "if not os.path.exists(path):",
                '    raise DataError(f"text not found: {path} does not exist (set the data root with --data-root)")',
                f"tokens, vocab = read_text(path, {p.vocab!r})",
                f"return text_split(tokens, vocab, split, {p.val_fraction!r}, {p.test_fraction!r}, {code(p.stride)})",
            ],
            imports=frozenset({"import os"}),
            uses=frozenset({"text"}),
        )
