"""The pydantic models of a spec document: the source of `schemas/specc.schema.json`.

Layer models are derived from the op registry: each op's parameter model, with every number
widened to also accept an expression, plus the node fields every layer shares (`op`, `name`,
`in`). Adding an op therefore adds it to the document and the schema with no edit here.
"""

from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model, model_validator

from specc.ops import all_ops
from specc.ops.base import DType, PosInt
from specc.spec.training import DataSpec, TrainSpec
from specc.spec.transfer import Glob, Pretrained
from specc.spec.types import ClassName, ExprStr, Identifier, Scalar, StrictModel, widen

SPEC_VERSION = 1


class InputSpec(StrictModel):
    """One model input: its per-sample shape (no batch dimension) and dtype."""

    shape: Annotated[list[PosInt], Field(min_length=1, max_length=8)]
    dtype: DType = "float32"


# A reference to an input (`x`) or an earlier layer; unknown names are reported by the resolver.
Ref = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
Refs = Ref | Annotated[list[Ref], Field(min_length=1)]


class NodeBase(StrictModel):
    """Fields every layer has."""

    name: Identifier | None = Field(default=None, description="Attribute name in model.py; default: op stem + number.")
    in_: Refs | None = Field(default=None, alias="in", description="Input node name(s); default: the previous layer.")
    when: bool | ExprStr | None = Field(
        default=None,
        description="Keep this layer only if the condition holds (e.g. `stride != 1 or in_channels != planes`);"
        " otherwise references to it mean its input.",
    )


class SequentialLayer(NodeBase):
    """An `nn.Sequential` container; its children are numbered 0, 1, ... as in torchvision."""

    op: Literal["sequential"]
    layers: Annotated[list["LayerItem"], Field(min_length=1)]


# A name pattern with the repeat index: an identifier around exactly one `{i}` (checked by the resolver).
RepeatNames = Annotated[str, Field(min_length=1, max_length=60)]


class BlockLayer(NodeBase):
    """An instance of a block from `blocks:` (its own nn.Module class); with `repeat`, an nn.Sequential of them."""

    block: ClassName
    args: dict[Identifier, Scalar | ExprStr] = Field(
        default_factory=dict, description="Values of the block's parameters; with `repeat`, `i` is the index."
    )
    repeat: PosInt | ExprStr | None = Field(default=None, description="Number of instances, numbered 0, 1, ...")
    names: RepeatNames | None = Field(
        default=None,
        description="With `repeat`: the instances' names in their nn.Sequential, `{i}` being the index"
        " (e.g. `encoder_layer_{i}`); default 0, 1, ...",
    )


BLOCK_TAG = "block use"  # not a possible key, so error locations never mistake it for one


def _layer_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "shorthand"
    if isinstance(value, dict):
        op = value.get("op")
        if op is None and "block" in value:
            return BLOCK_TAG
        return op if isinstance(op, str) else None
    return None


@cache
def layer_models() -> dict[str, type[BaseModel]]:
    """One document model per op, named e.g. `Conv2dLayer`."""
    models: dict[str, type[BaseModel]] = {}
    for name, op in all_ops().items():
        fields: dict[str, Any] = {"op": (Literal[name], ...)}
        for field_name, info in op.Params.model_fields.items():
            annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
            default = ... if info.is_required() else info.default
            fields[field_name] = (widen(annotation), Field(default=default, description=info.description))
        if op.tieable:
            fields["tie"] = (
                Ref | None,
                Field(default=None, description="An earlier layer whose `weight` this layer shares (weight tying)."),
            )
        class_name = "".join(part.capitalize() for part in name.split("_")) + "Layer"
        models[name] = create_model(class_name, __base__=NodeBase, __doc__=op.summary, **fields)
    return models


def _layer_union() -> Any:
    members = [Annotated[model, Tag(name)] for name, model in layer_models().items()]
    members.append(Annotated[SequentialLayer, Tag("sequential")])
    members.append(Annotated[BlockLayer, Tag(BLOCK_TAG)])
    shorthand = Literal[
        tuple(
            n
            for n, op in all_ops().items()
            if not op.Params.model_fields or all(not f.is_required() for f in op.Params.model_fields.values())
        )
    ]
    members.append(Annotated[shorthand, Tag("shorthand")])
    return Annotated[Union[tuple(members)], Discriminator(_layer_tag)]  # noqa: UP007


LayerItem = _layer_union()
SequentialLayer.model_rebuild()

ParamType = Literal["int", "float", "bool"]


class BlockParam(StrictModel):
    """A typed block parameter with an optional default."""

    type: ParamType
    default: Scalar | None = None

    @model_validator(mode="after")
    def _default_matches_type(self) -> "BlockParam":
        expected = {"int": int, "float": (int, float), "bool": bool}[self.type]
        if self.default is not None and (
            not isinstance(self.default, expected) or (self.type != "bool" and isinstance(self.default, bool))
        ):
            raise ValueError(f"default {self.default!r} is not a valid {self.type}")
        return self


class BlockSpec(StrictModel):
    """A reusable, parametrised block: becomes its own nn.Module class. Its input is named `x`."""

    params: dict[Identifier, ParamType | BlockParam] = Field(
        default_factory=dict, description="Parameters: a type (required) or {type, default}."
    )
    vars: dict[Identifier, Scalar | ExprStr] = Field(
        default_factory=dict,
        description="Named values computed from the parameters, in order (e.g. `width: planes * base_width // 64`);"
        " they become local variables of the block's __init__.",
    )
    inputs: Annotated[list[Identifier], Field(min_length=1, max_length=8)] | None = Field(
        default=None,
        description="Inputs besides `x` (always the first), e.g. `[memory]` or `[padding_mask]`; a use passes them"
        " with `in: [a, b]`, and a `repeat` passes them to every instance (a loop over an nn.ModuleList).",
    )
    dims: Annotated[list[Identifier], Field(min_length=1, max_length=8)] | None = Field(
        default=None,
        description="Names of the input's per-sample sizes, e.g. `[seq_len, embed_dim]`: usable in expressions,"
        " constructor parameters of the class, shown in its comments. Default: in_channels, ..., in_features.",
    )
    layers: Annotated[list[LayerItem], Field(min_length=1)]  # type: ignore[valid-type]
    output: Ref | None = Field(default=None, description="The node whose value forward returns; default: the last.")

    @model_validator(mode="after")
    def _names_free(self) -> "BlockSpec":
        for name in self.vars:
            if name in self.params:
                raise ValueError(f"`{name}` is both a parameter and a var")
        for name in self.dims or []:
            if name in self.params or name in self.vars or (self.dims or []).count(name) > 1:
                raise ValueError(f"dim `{name}` is named twice (as a dim, parameter or var)")
        names = [*self.params, *self.vars, *(self.dims or [])]
        for name in self.inputs or []:
            if name in names or (self.inputs or []).count(name) > 1:
                raise ValueError(f"input `{name}` is named twice (as an input, parameter, var or dim)")
        for name in [*self.params, *self.vars, *(self.dims or []), *(self.inputs or [])]:
            if name.startswith("in_") or name == "i":
                raise ValueError(
                    f"block parameter `{name}`: names `i` and `in_*` are reserved for indices and input sizes"
                )
        return self

    def param_decls(self) -> dict[str, BlockParam]:
        return {k: BlockParam(type=v) if isinstance(v, str) else v for k, v in self.params.items()}


def _layers_or_extends(schema: dict[str, Any]) -> None:
    """In a file, `layers` may be left out by a spec that `extends` another: it takes the base's layers.

    (Validation sees the merged document, where `layers` is always present.)
    """
    schema["required"] = [key for key in schema.get("required", []) if key != "layers"]
    schema["anyOf"] = [{"required": ["layers"]}, {"required": ["extends"]}]


class Spec(StrictModel):
    """A specc network spec."""

    model_config = ConfigDict(json_schema_extra=_layers_or_extends)

    specc: Literal[1] = Field(default=SPEC_VERSION, description="Spec format version.")
    name: ClassName = Field(description="Name of the generated nn.Module class.")
    description: Annotated[str, Field(max_length=2000)] | None = None
    input: InputSpec | None = Field(default=None, description="The single input (named `x` in forward).")
    inputs: dict[Identifier, InputSpec] | None = Field(default=None, description="Several named inputs.")
    params: dict[Identifier, Scalar] = Field(
        default_factory=dict, description="Constants usable in expressions, e.g. `num_classes: 10`."
    )
    blocks: dict[ClassName, BlockSpec] = Field(default_factory=dict, description="Reusable blocks, by class name.")
    layers: Annotated[list[LayerItem], Field(min_length=1)] = Field(  # type: ignore[valid-type]
        description="The network, in order; each layer takes the previous one unless it says `in`."
    )
    output: Ref | None = Field(default=None, description="The node whose value forward returns; default: the last.")
    extends: Identifier | None = Field(
        default=None, description="A bundled spec (e.g. `resnet18`) whose blocks and layers this spec starts from."
    )
    replace: dict[Identifier, LayerItem] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="Top-level layers to replace, by name (e.g. a new head `fc`)."
    )
    pretrained: Pretrained | None = Field(default=None, description="Load pretrained weights in build_model().")
    freeze: list[Glob] = Field(default_factory=list, description="Parameter-name patterns to freeze (`*`: all).")
    trainable: list[Glob] = Field(
        default_factory=list, description="Patterns kept trainable although `freeze` matches them (e.g. `fc.*`)."
    )
    data: DataSpec | None = Field(default=None, description="The data to train on (generates dataset.py).")
    train: TrainSpec | None = Field(default=None, description="How to train (generates train.py with `data`).")

    @model_validator(mode="after")
    def _one_input_form(self) -> "Spec":
        for name in self.params:
            if name.startswith("in_") or name == "i":
                raise ValueError(f"parameter `{name}`: names `i` and `in_*` are reserved for indices and input sizes")
        if (self.input is None) == (self.inputs is None):
            raise ValueError("give exactly one of `input` (a single input) or `inputs` (named inputs)")
        if self.inputs is not None and not self.inputs:
            raise ValueError("`inputs` must name at least one input")
        return self

    def input_types(self) -> dict[str, InputSpec]:
        return {"x": self.input} if self.input is not None else dict(self.inputs or {})


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec document (draft 2020-12), as committed in schemas/specc.schema.json."""
    schema = Spec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://specc.dev/schemas/specc.schema.json"
    schema["title"] = "specc network spec"
    return schema
