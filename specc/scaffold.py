"""`specc new NAME --from TEMPLATE`: a new spec file from a bundled example, with the editor modeline."""

import json
import re
from importlib import resources
from pathlib import Path

from specc.errors import SourceLoc, SpecError, did_you_mean
from specc.extend import zoo_names
from specc.naming import class_name_problem
from specc.spec.document import json_schema

SCHEMA_FILE = "specc.schema.json"
MODELINE = f"# yaml-language-server: $schema={SCHEMA_FILE}"
_NAME_LINE = re.compile(r"^name: .*$", flags=re.M)
_MODELINE_LINE = re.compile(r"^# yaml-language-server: .*\n", flags=re.M)


def class_name_for(stem: str) -> str:
    """`my_net` -> `MyNet`: the class name a file name suggests."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", stem) if part)


def scaffold(file_name: str, template: str) -> dict[str, str]:
    """The files `specc new` writes beside each other: the spec, and the JSON Schema its modeline points at."""
    path = Path(file_name)
    names = zoo_names()
    if template not in names:
        raise SpecError(
            "E111",
            f"no bundled spec named {template!r}",
            SourceLoc("<command line>"),
            hint=did_you_mean(template, names) or f"choose one of: {', '.join(names)}",
        )
    class_name = class_name_for(path.stem)
    problem = class_name_problem(class_name) if class_name else "the file name gives no class name"
    if problem:
        raise SpecError("E106", f"cannot name a class after {path.name!r}: {problem}", SourceLoc("<command line>"))
    text = resources.files("specc.zoo").joinpath(f"{template}.yaml").read_text(encoding="utf-8")
    text = _MODELINE_LINE.sub("", text, count=1)
    text = _NAME_LINE.sub(f"name: {class_name}", text, count=1)
    spec = f"{MODELINE}\n# Started from specc's bundled `{template}` spec.\n{text}"
    schema = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    return {path.name: spec, SCHEMA_FILE: schema}
