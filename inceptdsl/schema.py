"""JSON Schema (draft 2020-12) of the YAML spec format, for editors (``inceptdsl schema``).

The top-level keys come from the pydantic :class:`~inceptdsl.spec.TopLevel` model; the
``body`` and ``blocks`` values get a precise schema of body nodes: a string (a layer call),
a list (a sequence), a mapping with one form key (``seq``, ``concat``, ``add``, ``repeat``,
``ref``) and its modifiers, or a single ``name: node`` mapping with modifiers. A variant
(a document with ``extends``) may leave out ``name``, ``input`` and ``body``.

Point an editor (the YAML language server) at a generated copy with a first line
``# yaml-language-server: $schema=inceptdsl.schema.json``.

>>> schema = json_schema()
>>> schema["$schema"], sorted(schema["properties"])[:4]
('https://json-schema.org/draft/2020-12/schema', ['aliases', 'blocks', 'body', 'description'])
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from .spec import FORM_KEYS, FORMAT_VERSION, MODIFIER_KEYS, TopLevel

DRAFT = "https://json-schema.org/draft/2020-12/schema"
IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
SIGNATURE = r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*(\(.*\))?\s*$"
LAYER = r"^\s*[A-Za-z_][A-Za-z0-9_]*"
# modifiers of forms only; a named node (``name: node``) may carry all the others
FORM_ONLY = ("name", "scale", "act", "body")
NAMED_MODIFIERS = tuple(k for k in MODIFIER_KEYS if k not in FORM_ONLY)
REF = "#/$defs/"


def json_schema() -> dict[str, Any]:
    """The whole schema: pydantic's top level, refined, plus ``$defs`` for body nodes.

    >>> s = json_schema()
    >>> s["properties"]["body"]["items"], sorted(s["$defs"])[:3]
    ({'$ref': '#/$defs/node'}, ['edit', 'expression', 'form'])
    """
    schema = TopLevel.model_json_schema()
    schema.pop("required", None)
    props = schema["properties"]
    for key, value in _top_level().items():
        props[key] = {**props.get(key, {}), **value}
    return {
        "$schema": DRAFT,
        "title": "inceptdsl spec (YAML)",
        "description": "A network spec for inceptdsl (format 1); see docs/language.md.",
        **schema,
        "if": {"not": {"required": ["extends"]}},
        "then": {"required": ["name", "input", "body"]},
        "$defs": _defs(),
    }


def _top_level() -> dict[str, dict[str, Any]]:
    """Refinements of the pydantic properties (pydantic validators are not in its schema)."""
    return {
        "format": {"const": FORMAT_VERSION, "description": "format version of the spec"},
        "name": {"pattern": IDENT, "description": "spec name (an identifier)"},
        "extends": {"description": "parent spec: a shipped name or a path"},
        "input": {"items": {"type": "integer", "minimum": 1, "maximum": 65536},
                  "minItems": 3, "maxItems": 3, "description": "[channels, height, width]"},
        "params": {"propertyNames": {"pattern": IDENT},
                   "description": "parameters with defaults (override with --set K=V)"},
        "blocks": {"propertyNames": {"pattern": SIGNATURE},
                   "additionalProperties": {"$ref": REF + "node"},
                   "description": "reusable blocks: 'Name(param, param=default): body'"},
        "body": {"items": {"$ref": REF + "node"}, "description": "the network, in order"},
        "edits": {"items": {"$ref": REF + "edit"},
                  "description": "a variant's changes to its parent's body, in order"},
    }


def _defs() -> dict[str, Any]:
    return {
        "identifier": {"type": "string", "pattern": IDENT},
        "expression": {"type": ["string", "number", "boolean"],
                       "description": "a value or an expression over the parameters"},
        "layer": {"type": "string", "pattern": LAYER,
                  "description": "a layer: conv(64, 1), relu, InceptionA(32) ..."},
        "sequence": {"type": "array", "items": {"$ref": REF + "node"},
                     "description": "layers one after another"},
        "node": {"anyOf": [{"$ref": REF + k} for k in ("layer", "sequence", "form", "named")]},
        "form": _form(),
        "named": _named(),
        "edit": _edit(),
    }


def _edit() -> dict[str, Any]:
    """``{remove: PATH}``, ``{replace: PATH, with: NODE}``, ``{set: PATH, with: {...}}``..."""
    from .edits import NEEDS_WITH, VERBS

    path = {"type": "string", "description": "a dotted path (Mixed_5b.branch_pool) or a "
            "glob over paths (Mixed_6*)"}
    return {
        "type": "object",
        "properties": {**{verb: path for verb in VERBS},
                       "with": {"description": "the node put in (replace, insert_*), or "
                                "the arguments set ({pool_features: 64}, {count: 5})"}},
        "additionalProperties": False,
        "oneOf": [{"required": [verb, "with"] if verb in NEEDS_WITH else [verb],
                   "propertyNames": {"enum": [verb, "with"] if verb in NEEDS_WITH
                                     else [verb]}}
                  for verb in VERBS],
    }


# a loss weight makes a node a side output: 'side: false' next to one is a contradiction
NOT_SIDE_WITH_LOSS_WEIGHT = {"not": {"required": ["side", "loss_weight"],
                                     "properties": {"side": {"const": False}}}}


def _modifiers() -> dict[str, Any]:
    """Every modifier key of spec.py, described (one added there is at least accepted)."""
    expr = {"$ref": REF + "expression"}
    known = {
        "name": {"$ref": REF + "identifier", "description": "name of the node"},
        "when": {"type": ["string", "integer", "boolean"],
                 "description": "the node exists only if this is true"},
        "side": {"type": "boolean", "description": "a side output (training only)"},
        "loss_weight": {**expr, "description": "loss weight of the side output"},
        "from": {"$ref": REF + "identifier", "description": "read this earlier node"},
        "inline": {"type": "boolean",
                   "description": "a block call whose members join the caller's module"},
        "scale": {**expr, "description": "scale of the first add branch"},
        "act": {"type": ["string", "null"], "description": "activation after the add"},
        "split": {"description": "concat: channels of the input each branch reads "
                  "(a list of expressions, or one expression giving a list)"},
        "index": {"$ref": REF + "identifier",
                  "description": "repeat: the name of the copy's number (0, 1, ...)"},
        "body": {"$ref": REF + "node", "description": "the body to repeat"},
    }
    return {key: known.get(key, {"description": "modifier"}) for key in MODIFIER_KEYS}


def _form() -> dict[str, Any]:
    """A mapping with exactly one form key and the modifiers that apply to it."""
    branches = {"type": "array", "minItems": 1, "items": {"$ref": REF + "node"}}
    forms = {
        "seq": {"$ref": REF + "node", "description": "a sequence"},
        "concat": {**branches, "description": "branches concatenated on channels"},
        "add": {**branches, "description": "branches summed (residual)"},
        "mul": {**branches, "description": "branches multiplied elementwise (a gate)"},
        "repeat": {"type": ["string", "integer"], "minimum": 0, "maximum": 10_000,
                   "description": "how many copies of body"},
        "ref": {"$ref": REF + "identifier", "description": "an earlier named node"},
    }
    assert set(forms) == set(FORM_KEYS)
    return {
        "type": "object",
        "properties": {**forms, **_modifiers()},
        "additionalProperties": False,
        "oneOf": [{"required": [key]} for key in FORM_KEYS],
        "dependentRequired": {"scale": ["add"], "act": ["add"], "body": ["repeat"],
                              "index": ["repeat"], "split": ["concat"],
                              "repeat": ["body"]},
        "allOf": [NOT_SIDE_WITH_LOSS_WEIGHT],
    }


def _named() -> dict[str, Any]:
    """``{name: node}`` plus optional modifiers: exactly one key that is not a modifier."""
    reserved = "|".join((*FORM_KEYS, *MODIFIER_KEYS))
    mods = _modifiers()
    # at most one non-modifier key: some subset S of the modifiers present and |keys| <= |S|+1
    subsets = [list(s) for n in range(len(NAMED_MODIFIERS) + 1)
               for s in combinations(NAMED_MODIFIERS, n)]
    return {
        "type": "object",
        "properties": {k: mods[k] for k in NAMED_MODIFIERS},
        "patternProperties": {f"^(?!({reserved})$)[A-Za-z_][A-Za-z0-9_]*$":
                              {"$ref": REF + "node"}},
        "additionalProperties": False,
        "not": {"propertyNames": {"enum": list(NAMED_MODIFIERS)}},
        "anyOf": [{"required": s, "maxProperties": len(s) + 1} for s in subsets],
        "allOf": [NOT_SIDE_WITH_LOSS_WEIGHT],
    }
