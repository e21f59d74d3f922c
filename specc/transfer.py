"""Stage 4b: check transfer-learning patterns against the model's real parameter names.

`freeze`, `trainable` and `pretrained.exclude` are fnmatch patterns over the names that
`model.named_parameters()` (and, for `exclude`, `state_dict()`) will have. A pattern that matches
nothing is almost always a typo, so it is an error rather than a silent no-op.
"""

from dataclasses import dataclass
from fnmatch import fnmatchcase

from specc.errors import SpecError, did_you_mean
from specc.ir import Graph
from specc.load import Document
from specc.spec.document import Spec
from specc.summary import parameters


@dataclass(frozen=True)
class TransferPlan:
    frozen: tuple[str, ...]  # parameter names with requires_grad=False
    trainable_params: int
    excluded: tuple[str, ...]  # parameter names whose pretrained values are not loaded


def matches(name: str, patterns: list[str] | tuple[str, ...]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def plan_transfer(spec: Spec, graph: Graph, doc: Document) -> TransferPlan:
    sizes = parameters(graph)
    names = list(sizes)
    excluded_patterns = spec.pretrained.exclude if spec.pretrained else []
    for key, patterns in (("freeze", spec.freeze), ("trainable", spec.trainable), ("exclude", excluded_patterns)):
        for index, pattern in enumerate(patterns):
            if not any(fnmatchcase(name, pattern) for name in names):
                path = ("pretrained", "exclude", index) if key == "exclude" else (key, index)
                prefixes = sorted({n.rsplit(".", 1)[0] + ".*" for n in names})
                raise SpecError(
                    "E112",
                    f"`{key}` pattern {pattern!r} matches no parameter of {graph.name}",
                    doc.loc(path),
                    hint=did_you_mean(pattern, prefixes) or "patterns match names such as " + ", ".join(names[:3]),
                )
    frozen = tuple(n for n in names if matches(n, spec.freeze) and not matches(n, spec.trainable))
    excluded = tuple(n for n in names if matches(n, excluded_patterns))
    trainable = sum(size for name, size in sizes.items() if name not in frozen)
    return TransferPlan(frozen=frozen, trainable_params=trainable, excluded=excluded)
