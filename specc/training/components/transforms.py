"""Per-sample transforms (torchvision.transforms.v2), each with the shape rule the compiler checks.

Images are (C, H, W). A size is an int or [height, width], as in torchvision.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from specc.ops.base import PosInt, Probability
from specc.training.base import Call, Params, Sample, ShapeError, Transform, Var, non_default
from specc.training.registry import register

Size = PosInt | Annotated[list[PosInt], Field(min_length=2, max_length=2)]
NonNegInt = Annotated[int, Field(ge=0, le=2**31 - 1)]
Padding = NonNegInt | Annotated[list[NonNegInt], Field(min_length=2, max_length=4)]
Fill = Annotated[float, Field(ge=0.0)] | Annotated[int, Field(ge=0)]
Interpolation = Literal["nearest", "bilinear", "bicubic"]
Range = Annotated[list[float], Field(min_length=2, max_length=2)]

_DTYPES = {
    "float32": "torch.float32",
    "float16": "torch.float16",
    "bfloat16": "torch.bfloat16",
    "float64": "torch.float64",
}


def _hw(size: int | list[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (size[0], size[1])


def _image(x: Sample, what: str) -> tuple[int | None, int | None, int | None]:
    """(C, H, W) of an image sample; unknown sizes are None."""
    if x.shape is None:
        return (None, None, None)
    if len(x.shape) != 3:
        raise ShapeError("E203", f"{what} works on images (C, H, W), but the samples here are {x.describe()}")
    c, h, w = x.shape
    return c, h, w


def _padding(padding: int | list[int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), as torchvision reads `padding`."""
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[1], padding[0], padding[1])
    if len(padding) == 4:
        return (padding[0], padding[1], padding[2], padding[3])
    raise ShapeError("E104", "padding is one number, [left/right, top/bottom] or [left, top, right, bottom]", "padding")


def _interpolation(mode: str) -> Var:
    return Var(f"v2.InterpolationMode.{mode.upper()}")


class NoParams(Params):
    pass


@register
class ToTensor(Transform):
    name = "to_tensor"
    torch_name = "v2.ToImage + v2.ToDtype(torch.float32, scale=True)"
    summary = "PIL image or uint8 tensor -> float32 tensor in [0, 1] (what transforms.ToTensor did)."
    Params = NoParams
    needs = ("pil", "uint8", "any")

    def apply(self, p: NoParams, x: Sample) -> Sample:
        return Sample(x.shape, "float", x.images, x.num_classes)

    def emit(self, p: NoParams, x: Sample) -> list[Call]:
        image, batch = self._split(x)
        return image + batch

    def batch_form(self, p: NoParams, x: Sample) -> tuple[list[Call], list[Call]]:
        return self._split(x)

    @staticmethod
    def _split(x: Sample) -> tuple[list[Call], list[Call]]:
        to_float = Call("v2.ToDtype", (Var("torch.float32"),), (("scale", True),))
        return ([] if x.kind == "uint8" else [Call("v2.ToImage")]), [to_float]


@register
class ToImage(Transform):
    name = "to_image"
    torch_name = "v2.ToImage"
    summary = "PIL image -> uint8 image tensor (C, H, W), values unchanged."
    Params = NoParams
    needs = ("pil", "uint8", "any")

    def apply(self, p: NoParams, x: Sample) -> Sample:
        return Sample(x.shape, "uint8" if x.kind in ("pil", "uint8") else x.kind, x.images, x.num_classes)

    def emit(self, p: NoParams, x: Sample) -> list[Call]:
        return [Call("v2.ToImage")]


class ToDtypeParams(Params):
    dtype: Literal["float32", "float16", "bfloat16", "float64"] = "float32"
    scale: bool = True


@register
class ToDtype(Transform):
    name = "to_dtype"
    torch_name = "v2.ToDtype"
    summary = "Tensor -> floating dtype; `scale: true` maps uint8 0..255 to 0..1."
    Params = ToDtypeParams
    needs = ("uint8", "float", "any")

    def apply(self, p: ToDtypeParams, x: Sample) -> Sample:
        return Sample(x.shape, "float", x.images, x.num_classes)

    def emit(self, p: ToDtypeParams, x: Sample) -> list[Call]:
        return [Call("v2.ToDtype", (Var(_DTYPES[p.dtype]),), (("scale", p.scale),))]

    def batch_form(self, p: ToDtypeParams, x: Sample) -> tuple[list[Call], list[Call]]:
        return [], self.emit(p, x)


class ResizeParams(Params):
    size: Size = Field(description="An int resizes the shorter side (keeping the aspect ratio); [h, w] is exact.")
    interpolation: Interpolation = "bilinear"
    antialias: bool = True


@register
class Resize(Transform):
    name = "resize"
    torch_name = "v2.Resize"
    summary = "Resize to `size` ([h, w]), or the shorter side to `size` keeping the aspect ratio."
    Params = ResizeParams

    def apply(self, p: ResizeParams, x: Sample) -> Sample:
        c, h, w = _image(x, self.name)
        if isinstance(p.size, list):
            new_h, new_w = p.size
        elif h is None or w is None:
            new_h = new_w = None
        else:  # torchvision's _compute_resized_output_size
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = p.size, int(p.size * long / short)
            new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        return Sample((c, new_h, new_w), x.kind, x.images, x.num_classes)

    def emit(self, p: ResizeParams, x: Sample) -> list[Call]:
        kwargs = non_default(p, ["antialias"])
        if p.interpolation != "bilinear":
            kwargs = (("interpolation", _interpolation(p.interpolation)), *kwargs)
        return [Call("v2.Resize", (p.size,), kwargs)]


class CropParams(Params):
    size: Size


@register
class CenterCrop(Transform):
    name = "center_crop"
    torch_name = "v2.CenterCrop"
    summary = "Crop the centre `size` ([h, w] or a square); smaller images are padded with zeros."
    Params = CropParams

    def apply(self, p: CropParams, x: Sample) -> Sample:
        c, _, _ = _image(x, self.name)
        return Sample((c, *_hw(p.size)), x.kind, x.images, x.num_classes)

    def emit(self, p: CropParams, x: Sample) -> list[Call]:
        return [Call("v2.CenterCrop", (p.size,))]


class RandomCropParams(Params):
    size: Size
    padding: Padding | None = None
    pad_if_needed: bool = False
    fill: Fill = 0
    padding_mode: Literal["constant", "edge", "reflect", "symmetric"] = "constant"


@register
class RandomCrop(Transform):
    name = "random_crop"
    torch_name = "v2.RandomCrop"
    summary = "Pad by `padding` (optional), then crop `size` at a random position (augmentation)."
    Params = RandomCropParams
    random = True

    def apply(self, p: RandomCropParams, x: Sample) -> Sample:
        c, h, w = _image(x, self.name)
        ch, cw = _hw(p.size)
        if h is not None and w is not None and not p.pad_if_needed:
            left, top, right, bottom = _padding(p.padding) if p.padding is not None else (0, 0, 0, 0)
            ph, pw = h + top + bottom, w + left + right
            if ch > ph or cw > pw:
                raise ShapeError(
                    "E202",
                    f"crop size {ch}x{cw} is larger than the (padded) image {ph}x{pw}",
                    "size",
                    hint="set `pad_if_needed: true`, or add padding",
                )
        return Sample((c, ch, cw), x.kind, x.images, x.num_classes)

    def emit(self, p: RandomCropParams, x: Sample) -> list[Call]:
        return [Call("v2.RandomCrop", (p.size,), non_default(p, ["padding", "pad_if_needed", "fill", "padding_mode"]))]

    def eval_counterpart(self, p: RandomCropParams, x: Sample) -> list[tuple[str, dict[str, Any]]]:
        if x.known and x.shape is not None and tuple(x.shape[1:]) == _hw(p.size):
            return []
        return [("center_crop", {"size": p.size})]


class RandomResizedCropParams(Params):
    size: Size
    scale: Range = Field(default=[0.08, 1.0])
    ratio: Range = Field(default=[3 / 4, 4 / 3])
    interpolation: Interpolation = "bilinear"
    antialias: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> RandomResizedCropParams:
        for name in ("scale", "ratio"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"`{name}` must be [low, high] with 0 < low <= high")
        return self


@register
class RandomResizedCrop(Transform):
    name = "random_resized_crop"
    torch_name = "v2.RandomResizedCrop"
    summary = "Crop a random area and aspect ratio, resized to `size` (augmentation; eval: resize + centre crop)."
    Params = RandomResizedCropParams
    random = True

    def apply(self, p: RandomResizedCropParams, x: Sample) -> Sample:
        c, _, _ = _image(x, self.name)
        return Sample((c, *_hw(p.size)), x.kind, x.images, x.num_classes)

    def emit(self, p: RandomResizedCropParams, x: Sample) -> list[Call]:
        kwargs = non_default(p, ["scale", "ratio", "antialias"])
        if p.interpolation != "bilinear":
            kwargs = (*kwargs, ("interpolation", _interpolation(p.interpolation)))
        return [Call("v2.RandomResizedCrop", (p.size,), kwargs)]

    def eval_counterpart(self, p: RandomResizedCropParams, x: Sample) -> list[tuple[str, dict[str, Any]]]:
        # The usual evaluation crop: resize the shorter side to size / 0.875 (256 for 224), crop the centre.
        h, w = _hw(p.size)
        return [("resize", {"size": round(min(h, w) / 0.875)}), ("center_crop", {"size": p.size})]


class FlipParams(Params):
    p: Probability = 0.5


@register
class RandomHorizontalFlip(Transform):
    name = "random_horizontal_flip"
    torch_name = "v2.RandomHorizontalFlip"
    summary = "Mirror left-right with probability `p` (augmentation)."
    Params = FlipParams
    random = True

    def apply(self, p: FlipParams, x: Sample) -> Sample:
        _image(x, self.name)
        return x

    def emit(self, p: FlipParams, x: Sample) -> list[Call]:
        return [Call("v2.RandomHorizontalFlip", (), non_default(p, ["p"]))]


@register
class RandomVerticalFlip(RandomHorizontalFlip):
    name = "random_vertical_flip"
    torch_name = "v2.RandomVerticalFlip"
    summary = "Mirror top-bottom with probability `p` (augmentation)."

    def emit(self, p: FlipParams, x: Sample) -> list[Call]:
        return [Call("v2.RandomVerticalFlip", (), non_default(p, ["p"]))]


class RotationParams(Params):
    degrees: Annotated[float, Field(ge=0.0, le=180.0)] | Range
    fill: Fill = 0


@register
class RandomRotation(Transform):
    name = "random_rotation"
    torch_name = "v2.RandomRotation"
    summary = "Rotate by a random angle in [-degrees, degrees] (or [min, max]); size unchanged (augmentation)."
    Params = RotationParams
    random = True

    def apply(self, p: RotationParams, x: Sample) -> Sample:
        _image(x, self.name)
        return x

    def emit(self, p: RotationParams, x: Sample) -> list[Call]:
        return [Call("v2.RandomRotation", (p.degrees,), non_default(p, ["fill"]))]


class PadParams(Params):
    padding: Padding
    fill: Fill = 0
    padding_mode: Literal["constant", "edge", "reflect", "symmetric"] = "constant"


@register
class Pad(Transform):
    name = "pad"
    torch_name = "v2.Pad"
    summary = "Pad the borders: one number, [left/right, top/bottom] or [left, top, right, bottom]."
    Params = PadParams

    def apply(self, p: PadParams, x: Sample) -> Sample:
        c, h, w = _image(x, self.name)
        left, top, right, bottom = _padding(p.padding)
        return Sample(
            (c, None if h is None else h + top + bottom, None if w is None else w + left + right),
            x.kind,
            x.images,
            x.num_classes,
        )

    def emit(self, p: PadParams, x: Sample) -> list[Call]:
        return [Call("v2.Pad", (p.padding,), non_default(p, ["fill", "padding_mode"]))]


NonNegFloat = Annotated[float, Field(ge=0.0)]


class ColorJitterParams(Params):
    brightness: NonNegFloat | None = None
    contrast: NonNegFloat | None = None
    saturation: NonNegFloat | None = None
    hue: Annotated[float, Field(ge=0.0, le=0.5)] | None = None


@register
class ColorJitter(Transform):
    name = "color_jitter"
    torch_name = "v2.ColorJitter"
    summary = "Randomly change brightness, contrast, saturation and hue (augmentation)."
    Params = ColorJitterParams
    random = True

    def apply(self, p: ColorJitterParams, x: Sample) -> Sample:
        c, _, _ = _image(x, self.name)
        if c not in (None, 1, 3):
            raise ShapeError("E203", f"color_jitter needs 1- or 3-channel images, but these have {c} channels")
        return x

    def emit(self, p: ColorJitterParams, x: Sample) -> list[Call]:
        return [Call("v2.ColorJitter", (), non_default(p, ["brightness", "contrast", "saturation", "hue"]))]


class GrayscaleParams(Params):
    num_output_channels: Literal[1, 3] = 1


@register
class Grayscale(Transform):
    name = "grayscale"
    torch_name = "v2.Grayscale"
    summary = "Convert RGB to grayscale with 1 (or 3 identical) channels."
    Params = GrayscaleParams

    def apply(self, p: GrayscaleParams, x: Sample) -> Sample:
        c, h, w = _image(x, self.name)
        if c not in (None, 1, 3):
            raise ShapeError("E203", f"grayscale needs 1- or 3-channel images, but these have {c} channels")
        return Sample((p.num_output_channels, h, w), x.kind, x.images, x.num_classes)

    def emit(self, p: GrayscaleParams, x: Sample) -> list[Call]:
        return [Call("v2.Grayscale", (), non_default(p, ["num_output_channels"]))]


PositiveFloat = Annotated[float, Field(gt=0.0)]


class NormalizeParams(Params):
    mean: Annotated[list[float], Field(min_length=1, max_length=64)]
    std: Annotated[list[PositiveFloat], Field(min_length=1, max_length=64)]


@register
class Normalize(Transform):
    name = "normalize"
    torch_name = "v2.Normalize"
    summary = "Subtract `mean` and divide by `std`, per channel (after to_tensor)."
    Params = NormalizeParams
    needs = ("float", "any")

    def apply(self, p: NormalizeParams, x: Sample) -> Sample:
        c, _, _ = _image(x, self.name)
        for field in ("mean", "std"):
            n = len(getattr(p, field))
            if c is not None and n not in (1, c):
                raise ShapeError(
                    "E201", f"`{field}` has {n} values, but the images have {c} channel{'s' if c > 1 else ''}", field
                )
        return x

    def emit(self, p: NormalizeParams, x: Sample) -> list[Call]:
        return [Call("v2.Normalize", (), (("mean", p.mean), ("std", p.std)))]

    def batch_form(self, p: NormalizeParams, x: Sample) -> tuple[list[Call], list[Call]]:
        return [], self.emit(p, x)


class RandomErasingParams(Params):
    p: Probability = 0.5
    scale: Range = Field(default=[0.02, 0.33])
    ratio: Range = Field(default=[0.3, 3.3])
    value: float = 0.0


@register
class RandomErasing(Transform):
    name = "random_erasing"
    torch_name = "v2.RandomErasing"
    summary = "Erase a random rectangle with probability `p` (augmentation; after to_tensor)."
    Params = RandomErasingParams
    random = True
    needs = ("uint8", "float", "any")

    def apply(self, p: RandomErasingParams, x: Sample) -> Sample:
        _image(x, self.name)
        return x

    def emit(self, p: RandomErasingParams, x: Sample) -> list[Call]:
        return [Call("v2.RandomErasing", (), non_default(p, ["p", "scale", "ratio", "value"]))]


class BlurParams(Params):
    kernel_size: Annotated[int, Field(ge=1, le=255)]
    sigma: Annotated[float, Field(gt=0.0)] | Range = Field(default=[0.1, 2.0])

    @model_validator(mode="after")
    def _odd(self) -> BlurParams:
        if self.kernel_size % 2 == 0:
            raise ValueError("`kernel_size` must be odd")
        return self


@register
class GaussianBlur(Transform):
    name = "gaussian_blur"
    torch_name = "v2.GaussianBlur"
    summary = "Blur with a Gaussian kernel; a [min, max] sigma is drawn at random each time."
    Params = BlurParams

    def apply(self, p: BlurParams, x: Sample) -> Sample:
        _image(x, self.name)
        return x

    def emit(self, p: BlurParams, x: Sample) -> list[Call]:
        return [Call("v2.GaussianBlur", (p.kernel_size,), non_default(p, ["sigma"]))]


@register
class TrivialAugmentWide(Transform):
    name = "trivial_augment_wide"
    torch_name = "v2.TrivialAugmentWide"
    summary = "TrivialAugment: one random augmentation of random strength per image (before to_tensor)."
    Params = NoParams
    random = True
    needs = ("pil", "uint8")

    def apply(self, p: NoParams, x: Sample) -> Sample:
        _image(x, self.name)
        return x

    def emit(self, p: NoParams, x: Sample) -> list[Call]:
        return [Call("v2.TrivialAugmentWide")]
