"""The committed JSON Schema is current, and every example spec satisfies it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from specc.load import load_file
from specc.spec.document import json_schema
from tests.generated import ROOT, SPECS

SCHEMA_FILE = ROOT / "schemas" / "specc.schema.json"
MODELINE = "# yaml-language-server: $schema=../schemas/specc.schema.json"


def test_committed_schema_is_current() -> None:
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == json_schema(), (
        "schemas/specc.schema.json is stale; run: specc schema > schemas/specc.schema.json"
    )


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_example_specs_satisfy_schema(spec: Path) -> None:
    jsonschema.Draft202012Validator(json_schema()).validate(load_file(spec).data)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_example_specs_start_with_schema_modeline(spec: Path) -> None:
    assert spec.read_text(encoding="utf-8").splitlines()[0] == MODELINE


def test_schema_rejects_what_validation_rejects() -> None:
    """The schema is generated from the same models: an unknown key or op fails both."""
    validator = jsonschema.Draft202012Validator(json_schema())
    base = {"name": "Net", "input": {"shape": [4]}, "layers": [{"op": "linear", "out_features": 2}]}
    assert validator.is_valid(base)
    assert not validator.is_valid({**base, "layerz": []})
    assert not validator.is_valid({**base, "layers": [{"op": "linearr", "out_features": 2}]})
    assert not validator.is_valid({**base, "layers": [{"op": "linear", "out_features": True}]})
    assert validator.is_valid({**base, "layers": [{"op": "linear", "out_features": "n * 2"}]})
