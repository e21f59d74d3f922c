"""Transfer learning in a spec: start from pretrained weights, freeze by name pattern, replace the head."""

from typing import Annotated

from pydantic import Field, model_validator

from specc.spec.types import StrictModel

# A parameter-name pattern (fnmatch): `*`, `fc.*`, `layer4.*.bn?.weight`. No quotes or backslashes,
# so patterns can also appear in generated docstrings.
Glob = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.*?\[\]!-]{1,200}$")]
TorchvisionName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="e.g. `resnet18`")]
WeightsName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,63}$", description="e.g. `IMAGENET1K_V1`")]


class Pretrained(StrictModel):
    """Where the starting weights come from. The generated build_model() loads them."""

    torchvision: TorchvisionName | None = Field(
        default=None,
        description="A torchvision model name whose weights to load (torchvision.models.get_model_weights).",
    )
    weights: WeightsName = Field(default="DEFAULT", description="The torchvision weights enum member.")
    file: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="A local state_dict file (.pt/.pth), loaded with torch.load(weights_only=True)."
    )
    exclude: list[Glob] = Field(
        default_factory=list, description="Parameter/buffer names not loaded (e.g. the replaced head, `fc.*`)."
    )

    @model_validator(mode="after")
    def _some_source(self) -> "Pretrained":
        if self.torchvision is None and self.file is None:
            raise ValueError("give `torchvision` (a model name) or `file` (a local state_dict) to load weights from")
        return self
