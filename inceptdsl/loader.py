"""Finding, reading and resolving specs: shipped names, files, ``extends`` and ``--set``.

A spec document (from YAML or the text DSL) is a located mapping; ``extends`` merges it
over its parent document (params and blocks key by key, everything else replaced), then the
merged document is validated and parsed into a :class:`~inceptdsl.spec.Spec`.

>>> spec = load("inception_v3", overrides={"num_classes": 10})
>>> spec.params["num_classes"].value, spec.input
(10, [3, 299, 299])
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .edits import Edit, Variant, apply_edits, item_count, parse_edits
from .errors import (
    ErrorCollector,
    SourceSpan,
    SpecError,
    UsageError,
    did_you_mean,
    remember_source,
)
from .ops import fmt_shape
from .spec import (
    KNOBS,
    BlockDef,
    ParamValue,
    Seq,
    Spec,
    parse_block,
    parse_node,
    validate_top_level,
    value_problem,
)
from .yamlsrc import YList, YMap, YStr, load_yaml

SUFFIXES = (".yaml", ".yml", ".incept")
MAX_EXTENDS = 16


def specs_dir() -> Path:
    """The folder of the shipped specs (inside the installed package)."""
    return Path(str(resources.files("inceptdsl.specs")))


def shipped() -> dict[str, Path]:
    """Shipped spec names (and their aliases) -> files; YAML wins over DSL copies."""
    found: dict[str, Path] = {}
    for path in sorted(specs_dir().iterdir(), key=lambda p: (p.suffix != ".yaml", p.name)):
        if path.suffix in SUFFIXES and path.stem not in found:
            found[path.stem] = path
    for _name, path in list(found.items()):
        for alias in _aliases(path):
            found.setdefault(alias, path)
    return found


def _aliases(path: Path) -> list[str]:
    match = re.search(r"^aliases:\s*\[([^\]]*)\]", path.read_text(encoding="utf-8"), re.M)
    return [a.strip() for a in match.group(1).split(",") if a.strip()] if match else []


def find(ref: str) -> Path:
    """A spec reference (a path, or a shipped name) -> the file to read."""
    path = Path(ref)
    if path.suffix in SUFFIXES or "/" in ref or path.exists():
        if path.is_dir():
            raise UsageError(f"{ref}: is a directory, not a spec file")
        if not path.is_file():
            raise UsageError(f"{ref}: no such file")
        return path
    specs = shipped()
    if ref not in specs:
        hint = did_you_mean(ref, specs)
        raise UsageError(f"'{ref}' is neither a file nor a shipped spec"
                         + (f" ({hint})" if hint else "; see 'inceptdsl list'"))
    return specs[ref]


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    if b"\0" in data[:8192]:
        raise SpecError("this is a binary file, not a spec", SourceSpan(str(path), 1, 1, 1, 2))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                        SourceSpan(str(path), line, 1, line, 2)) from None
    return text.removeprefix("\ufeff")


def load_document(path: Path) -> YMap:
    """Read one spec file (YAML or DSL) into a located document, no ``extends`` applied."""
    text = read_text(path)
    remember_source(str(path), text)
    return parse_document(text, str(path))


def parse_document(text: str, path: str) -> YMap:
    """The located document of a spec's text, YAML or (for a ``.incept`` path) the DSL.

    >>> parse_document("name: t", "t.yaml")["name"]
    't'
    """
    if path.endswith(".incept"):
        from .dsl import parse_dsl

        doc = parse_dsl(text, path)
    else:
        doc = load_yaml(text, path)
    if not isinstance(doc, dict):
        raise SpecError("a spec must be a mapping of keys (name, input, params, blocks, body)",
                        getattr(doc, "span", SourceSpan(path, 1, 1, 1, 2)))
    return doc


def resolve_document(path: Path, chain: tuple[str, ...] = ()) -> YMap:
    """A document with its ``extends`` chain merged in."""
    doc = load_document(path)
    parent_ref = doc.get("extends")
    if parent_ref is None:
        return doc
    span = doc.value_span("extends")
    if not isinstance(parent_ref, str):
        raise SpecError("'extends' names a spec (a shipped name or a path)", span)
    key = str(path.resolve())
    if key in chain or len(chain) >= MAX_EXTENDS:
        raise SpecError(f"'extends' cycle: {path.name} extends itself through "
                        f"{parent_ref}", span)
    try:
        parent_path = _parent_path(str(parent_ref), path)
    except UsageError as exc:
        raise SpecError(str(exc), span) from None
    try:
        parent = resolve_document(parent_path, (*chain, key))
    except SpecError as exc:
        exc.notes.append((f"in '{parent_ref}', which this spec extends", span))
        raise
    return merge(parent, doc)


def _parent_path(ref: str, child: Path) -> Path:
    local = child.parent / ref
    if local.suffix in SUFFIXES and local.is_file():
        return local
    return find(ref)


def merge(parent: YMap, child: YMap) -> YMap:
    """Child over parent: ``params`` and ``blocks`` merge key by key, ``edits`` add up
    (unless the child replaces the body), the rest is replaced."""
    out = YMap(parent)
    out.span = child.span
    out.key_spans = {**parent.key_spans, **child.key_spans}
    out.value_spans = {**parent.value_spans, **child.value_spans}
    for key, value in child.items():
        if key in ("params", "blocks") and isinstance(value, dict) and isinstance(
                parent.get(key), dict):
            out[key] = _merge_map(parent[key], value, by_block=key == "blocks")
        elif key == "edits" and "body" not in child and isinstance(parent.get(key), list) \
                and isinstance(value, list):
            out[key] = _join_lists(parent[key], value)
        else:
            out[key] = value
    if "body" in child:
        out.pop("edits", None) if "edits" not in child else None
    out.variant = _variant_info(parent, child)
    out.pop("extends", None)
    out["extends"] = child["extends"]
    out.pop("aliases", None) if "aliases" not in child else None
    if "description" not in child:
        out["description"] = YStr(variant_description(parent, child), child.span)
    return out


def _join_lists(first: YList, second: YList) -> YList:
    out = YList([*first, *second])
    out.span = second.span
    out.item_spans = [*(first.item_span(i) for i in range(len(first))),
                      *(second.item_span(i) for i in range(len(second)))]
    return out


def _variant_info(parent: YMap, child: YMap) -> Variant:
    """What the child does to its parent's body (the edits themselves come later)."""
    body = child.get("body")
    own = child.get("edits")
    return Variant(str(child["extends"]), item_count(parent.get("body")),
                   item_count(body) if "body" in child else None,
                   own_edits=len(own) if isinstance(own, list) else 0)


def variant_description(parent: YMap, child: YMap) -> str:
    """What a variant without a description of its own is: its parent and what it changes.

    >>> parent = YMap({"name": "inception_v3", "input": [3, 299, 299]})
    >>> variant_description(parent, YMap({"params": {"num_classes": 10}}))
    'Variant of inception_v3: num_classes=10.'
    """
    changes = [f"{k}={_text(v)}" for k, v in (child.get("params") or {}).items()]
    if "input" in child:
        changes.append("input " + fmt_shape(child["input"]))
    blocks = [_block_name(k) for k in (child.get("blocks") or {})]
    if blocks:
        changes.append("its own " + ", ".join(blocks))
    if "body" in child:
        changes.append("its own body")
    name = parent.get("name", "its parent")
    return f"Variant of {name}: {'; '.join(changes)}." if changes else f"Variant of {name}."


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_text, value)) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _merge_map(parent: YMap, child: YMap, by_block: bool) -> YMap:
    out = YMap()
    out.span = child.span
    out.key_spans, out.value_spans = dict(parent.key_spans), dict(parent.value_spans)
    child_names = {_block_name(k) if by_block else k: k for k in child}
    for key, value in parent.items():
        name = _block_name(key) if by_block else key
        if name not in child_names:
            out[key] = value
    for key, value in child.items():
        out[key] = value
        out.key_spans[key] = child.key_span(key)
        out.value_spans[key] = child.value_span(key)
    return out


def _block_name(signature: str) -> str:
    match = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", signature)
    return match.group(1) if match else signature


def build_spec(doc: YMap, path: str) -> Spec:
    """Validate a merged document and parse its blocks and body."""
    top = validate_top_level(doc, path)
    errors = ErrorCollector()
    params = {}
    for key, value in top.params.items():
        span = doc["params"].value_span(key)
        try:
            from .spec import check_param_name

            check_param_name(key, "parameter name")
        except ValueError as exc:
            errors.add(SpecError(str(exc), doc["params"].key_span(key)))
        if problem := value_problem(str(key), value):
            errors.add(SpecError(problem, span))
        elif key in KNOBS:
            errors.add(SpecError(f"'{key}' is a global knob, not a parameter: every spec has "
                                 f"it; set it with --set {key}=VALUE",
                                 doc["params"].key_span(key),
                                 hint="a width knob scales every channel count where it is "
                                      "written and is built into the generated code"))
        params[str(key)] = ParamValue(_plain(value), span)
    blocks: dict[str, BlockDef] = {}
    raw_blocks = doc.get("blocks") or YMap()
    for key, value in top.blocks.items():
        try:
            block = parse_block(str(key), value, _key_span(raw_blocks, key),
                                raw_blocks.value_span(key))
        except SpecError as exc:
            errors.add(exc)
            continue
        if block.name in blocks:
            errors.add(SpecError(f"block '{block.name}' is defined twice", block.span,
                                 notes=[("first defined here", blocks[block.name].span)]))
        blocks[block.name] = block
    body = None
    try:
        body = parse_node(doc["body"], doc.value_span("body"))
    except SpecError as exc:
        errors.add(exc)
    variant = getattr(doc, "variant", None)
    edits = _edits(doc, variant, errors)
    errors.raise_if_any()
    assert isinstance(body, Seq)
    if variant is not None and edits:
        variant.edits, variant.base_body, variant.base_blocks = edits, body, dict(blocks)
        body, blocks = apply_edits(body, blocks, edits)
    return Spec(top.name, list(top.input), params, blocks, body, path, top.format,
                top.description, top.paper, top.reference, list(top.aliases), top.extends,
                doc.value_span("input"), raw=doc, variant=variant)


def _edits(doc: YMap, variant: Variant | None, errors: ErrorCollector) -> list[Edit]:
    if "edits" not in doc:
        return []
    if variant is None:
        errors.add(SpecError("'edits' change a parent's body: this spec extends nothing",
                             doc.key_span("edits"), hint="add 'extends: PARENT'"))
        return []
    try:
        return parse_edits(doc["edits"], doc.value_span("edits"))
    except SpecError as exc:
        errors.add(exc)
        return []


def _key_span(mapping: YMap, key: str) -> SourceSpan:
    if isinstance(key, YStr):
        return key.span
    return mapping.key_span(key)


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return str(value)
    return value


def load(ref: str | Path, overrides: dict[str, Any] | None = None) -> Spec:
    """Load a spec by path or shipped name, resolve ``extends``, apply overrides."""
    path = find(str(ref))
    spec = build_spec(resolve_document(path), str(path))
    return apply_overrides(spec, overrides or {})


def apply_overrides(spec: Spec, overrides: dict[str, Any]) -> Spec:
    """Apply ``--set`` values: spec params, ``input`` and the global knobs.

    >>> spec = load("googlenet")
    >>> for bad in ([("width", 2)], {1: 2}, {"width": float("nan")}, {"width": -1}):
    ...     try:
    ...         apply_overrides(spec, bad)
    ...     except UsageError as exc:
    ...         print(exc)
    set: expected a mapping of parameter names to values, found a list
    set: parameter names are strings, found 1
    --set width=nan: not a finite number (nan)
    --set width=-1: width must be more than 0 and at most 1e+06 (found -1)
    """
    if not isinstance(overrides, Mapping):
        raise UsageError("set: expected a mapping of parameter names to values, found a "
                         f"{type(overrides).__name__}")
    for key in overrides:
        if not isinstance(key, str):
            raise UsageError(f"set: parameter names are strings, found {key!r}")
    for key, value in overrides.items():
        if key == "input":
            if (not isinstance(value, list) or len(value) != 3 or not all(
                    isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65536
                    for v in value)):
                raise UsageError(f"--set input=...: expected [C, H, W], found {value!r}")
            spec.input = list(value)
        elif key in spec.params:
            spec.params[key] = ParamValue(_checked(key, value, spec.params[key].value),
                                          spec.params[key].span)
        elif key in KNOBS:
            spec.params[key] = ParamValue(_checked(key, value, KNOBS[key]), spec.body.span)
        else:
            known = ", ".join(["input", *KNOBS, *spec.params])
            hint = did_you_mean(key, ["input", *KNOBS, *spec.params])
            raise UsageError(f"--set {key}: '{spec.name}' has no parameter '{key}' "
                             f"({hint or 'known: ' + known})")
    return spec


def _checked(key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, (int, float)) and not isinstance(value, (int, float))):
        raise UsageError(f"--set {key}={_show(value)}: expected a value like {default!r}")
    problem = value_problem(key, value)
    if problem:
        raise UsageError(f"--set {key}={_show(value)}: {problem}")
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    return value


def _show(value: Any) -> str:
    """A --set value as the user would have written it: ``nan``, ``[3, 224, 224]``."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    text = f"{value:g}" if isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:55] + " ..."


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["num_classes=10", "input=[3,224,224]"]`` -> values parsed as YAML flow."""
    import yaml

    from .yamlsrc import read_value

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item}: expected KEY=VALUE")
        try:
            out[key.strip()] = read_value(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise UsageError(f"--set {item}: the value is not valid YAML") from None
    return out
