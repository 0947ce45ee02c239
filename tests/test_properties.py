"""Property-based hardening: mutated and random specs either compile or fail with a location.

Three hypothesis suites (2,000 examples in all, derandomized so CI is reproducible):

- text mutations of the shipped specs and test specs, YAML and DSL (delete, duplicate or
  swap lines, change numbers, insert characters);
- structural mutations of a loaded YAML document (drop a key, replace or swap values);
- random small networks built from the op set and the structures (sequences, concat, add,
  repeat, blocks with parameters, references, conditions).

The only outcomes allowed are success or a located spec error (``SpecError``,
``SpecErrors``, ``UsageError``); every accepted spec's generated torch and flax code must
parse and compile. Each suite counts the examples it actually ran and requires both
accepted and rejected specs among them, so it cannot pass vacuously.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inceptdsl.codegen import generate
from inceptdsl.errors import SpecError, SpecErrors
from inceptdsl.loader import UsageError, build_spec, load, specs_dir
from inceptdsl.ops import USER_OPS
from inceptdsl.yamlsrc import YList, YMap, load_yaml

ROOT = Path(__file__).resolve().parent
SOURCES = sorted([*specs_dir().glob("*.yaml"), *specs_dir().glob("*.incept"),
                  *(ROOT / "specs").glob("*.yaml"), *(ROOT / "fmt_identity").glob("*.incept")])
TEXTS = {p.name: p.read_text(encoding="utf-8") for p in SOURCES}
SETTINGS = {"deadline": None, "derandomize": True, "database": None,
            "suppress_health_check": list(HealthCheck)}


BACKENDS = ("torch", "flax")


def run_examples(max_examples: int, strategy, check: Callable[..., str]) -> Counter:
    """Run ``check`` on ``max_examples`` examples of ``strategy``; count its outcomes.

    >>> run_examples(5, st.integers(0, 9), lambda n: "ok")
    Counter({'ok': 5})
    """
    seen: Counter = Counter()

    @settings(max_examples=max_examples, **SETTINGS)
    @given(strategy)
    def run(case):
        seen[check(case)] += 1

    run()
    return seen


def assert_ran(seen: Counter, max_examples: int) -> None:
    """Every example ran, and some were accepted and some rejected."""
    assert sum(seen.values()) == max_examples, seen
    assert seen["ok"] > 0 and seen["error"] > 0, seen


def _is_located(error: SpecError, path: str) -> None:
    span = error.span
    assert span.line >= 1 and span.col >= 1, error
    assert span.path != "<spec>", f"error without a file: {error}"
    assert str(error).startswith(f"{span.path}:{span.line}:{span.col}: error: ")


def outcome(path: Path, build=None) -> str:
    """Load, analyse and generate; allow only success or located errors."""
    try:
        spec = build() if build else load(path)
        for backend in BACKENDS:
            source = generate(spec, backend)
            compile(ast.parse(source), f"<{backend}>", "exec")
    except UsageError as exc:  # a SpecError too, but one without a place in the spec
        assert str(exc)
        return "usage"
    except SpecErrors as exc:
        for error in exc.errors:
            _is_located(error, str(path))
        return "error"
    except SpecError as exc:
        _is_located(exc, str(path))
        return "error"
    return "ok"


# ---------------------------------------------------------------------- text mutations

CHARS = st.sampled_from(list(":-[]{}()#,'\"!&*|>=\t\n ") + ["->", "0", "x", "relu", "é"])
NUMBERS = st.sampled_from(["0", "-1", "1", "3", "7.5", "1e9", "99999999999", "2 ** 99"])


@st.composite
def text_mutation(draw, lines: list[str]) -> list[str]:
    """One random edit of a spec's lines."""
    lines = list(lines)
    i, j = (draw(st.integers(0, max(len(lines) - 1, 0))) for _ in range(2))
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "number", "insert"]))
    if kind == "delete" and lines:
        del lines[i]
    elif kind == "duplicate" and lines:
        lines.insert(j, lines[i])
    elif kind == "swap" and lines:
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "number":
        numbers = list(re.finditer(r"\d+(\.\d+)?", lines[i]))
        if numbers:
            m = numbers[draw(st.integers(0, len(numbers) - 1))]
            lines[i] = lines[i][:m.start()] + draw(NUMBERS) + lines[i][m.end():]
    else:
        at = draw(st.integers(0, len(lines[i])))
        lines[i] = lines[i][:at] + draw(CHARS) + lines[i][at:]
    return lines


@st.composite
def mutated_text(draw) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(TEXTS)))
    lines = TEXTS[name].splitlines()
    for _ in range(draw(st.integers(1, 3))):
        lines = draw(text_mutation(lines))
    return name, "\n".join(lines) + "\n"


def test_mutated_spec_texts_compile_or_fail_with_a_location(tmp_path):
    def check(case) -> str:
        name, text = case
        path = tmp_path / f"mutant{Path(name).suffix}"
        path.write_text(text, encoding="utf-8")
        return outcome(path)

    assert_ran(run_examples(500, mutated_text(), check), 500)


# ---------------------------------------------------------------------- structural mutations

YAML_SOURCES = sorted(n for n in TEXTS if n.endswith(".yaml"))
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**40) | st.floats(allow_nan=False)
    | st.sampled_from(["relu", "conv(8, 3)", "x", "", "concat", "ref", "1 +", "Unit(4)"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "body", "concat", "repeat", "when", "a", "seq", "add"]),
        inner, max_size=2),
    max_leaves=6)


def _located(value, path: str):
    """A plain value as the YAML loader would have produced it (with spans)."""
    return load_yaml(yaml.safe_dump({"v": value}), path)["v"]


def _containers(doc) -> list:
    found, stack = [], [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            found.append(node)
            stack.extend(node.values() if isinstance(node, dict) else node)
    return found


@st.composite
def mutated_document(draw) -> tuple[str, YMap]:
    name = draw(st.sampled_from(YAML_SOURCES))
    path = f"/specs/{name}"
    doc = load_yaml(TEXTS[name], path)
    for _ in range(draw(st.integers(1, 3))):
        containers = _containers(doc)
        node = containers[draw(st.integers(0, len(containers) - 1))]
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            continue
        key = keys[draw(st.integers(0, len(keys) - 1))]
        kind = draw(st.sampled_from(["drop", "replace", "swap"]))
        if kind == "drop":
            del node[key]
            if isinstance(node, YList):
                node.item_spans = node.item_spans[:len(node)]
        elif kind == "replace":
            node[key] = _located(draw(VALUES), path)
        else:
            other = keys[draw(st.integers(0, len(keys) - 1))]
            node[key], node[other] = node[other], node[key]
    return path, doc


def test_mutated_documents_compile_or_fail_with_a_location():
    def check(case) -> str:
        path, doc = case
        return outcome(Path(path), build=lambda: build_spec(doc, path))

    assert_ran(run_examples(300, mutated_document(), check), 300)


# ---------------------------------------------------------------------- random networks

SMALL = st.integers(1, 8)


def _pair(draw) -> str:
    return str(draw(SMALL)) if draw(st.booleans()) else f"[{draw(SMALL)}, {draw(SMALL)}]"


@st.composite
def layer(draw, params: list[str]) -> str:
    """A random op call, arguments mostly valid, sometimes not."""
    op = draw(st.sampled_from(USER_OPS + ["Unit"] * 4))
    channels = draw(st.sampled_from([str(draw(st.integers(1, 16))), *params, "0", "2 * c"]))
    if op in ("conv2d", "conv"):
        extra = draw(st.sampled_from(["", ", stride=2", ", pad=1", ", pad='same'",
                                      ", groups=2", ", bias=false", ", dilation=2"]))
        return f"conv({channels}, {_pair(draw)}{extra})"
    if op in ("maxpool", "avgpool"):
        return f"{op}({_pair(draw)}, stride={draw(SMALL)}, ceil={draw(st.booleans())})"
    if op in ("linear", "fc"):
        return f"linear({channels})"
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        return f"{op}({draw(SMALL)})"
    if op == "Unit":
        return f"Unit({channels})"
    if op == "lrn":
        return "lrn(5)"
    if op == "scale":
        return "scale(0.5)"
    return op


@st.composite
def node(draw, depth: int, params: list[str]):
    """A random body item: a layer, a named layer, or a structure around items."""
    kind = draw(st.sampled_from(["layer"] * 4 + ["named", "concat", "add", "repeat", "seq",
                                                 "ref", "when"] if depth else ["layer"]))
    child = node(depth - 1, params)
    if kind == "layer":
        return draw(layer(params))
    if kind == "named":
        return {draw(st.sampled_from(["a", "b", "stem", "head"])): draw(layer(params))}
    if kind in ("concat", "add"):
        out = {kind: draw(st.lists(child, min_size=1, max_size=3))}
        if kind == "add" and draw(st.booleans()):
            out |= {"scale": 0.2, "act": "relu"}
        return out
    if kind == "repeat":
        return {"repeat": draw(st.integers(0, 3)), "body": draw(child)}
    if kind == "seq":
        return {"seq": draw(st.lists(child, min_size=1, max_size=3)),
                "name": draw(st.sampled_from(["s1", "s2"]))}
    if kind == "ref":
        return {"ref": draw(st.sampled_from(["a", "b", "stem", "nowhere"]))}
    return {"when": draw(st.sampled_from(["flag", "not flag", "c > 4"])),
            "a" if draw(st.booleans()) else "b": draw(layer(params))}


@st.composite
def random_spec(draw) -> str:
    params = {"c": draw(st.integers(1, 16)), "flag": draw(st.booleans())}
    unit = draw(st.lists(node(1, ["out"]), min_size=1, max_size=3))
    body = draw(st.lists(node(2, ["c"]), min_size=1, max_size=5))
    if draw(st.booleans()):
        body += ["global_avgpool", "flatten", {"fc": "linear(10)"}]
    doc = {"name": "random", "input": [draw(st.integers(1, 4)), draw(st.integers(1, 32)),
                                       draw(st.integers(1, 32))],
           "params": params, "blocks": {"Unit(out)": unit}, "body": body}
    return yaml.safe_dump(doc, sort_keys=False, width=1000)


def test_random_networks_compile_or_fail_with_a_location(tmp_path):
    from inceptdsl.fmt import format_file

    def check(case) -> str:
        text, as_dsl = case
        path = tmp_path / "random.yaml"
        path.write_text(text, encoding="utf-8")
        if as_dsl:  # the same network through the text DSL front end
            try:
                dsl = format_file(str(path), "dsl")
            except SpecErrors as exc:
                for error in exc.errors:
                    _is_located(error, str(path))
                return "error"
            except SpecError as exc:
                _is_located(exc, str(path))
                return "error"
            path = path.with_suffix(".incept")
            path.write_text(dsl, encoding="utf-8")
        return outcome(path)

    assert_ran(run_examples(1200, st.tuples(random_spec(), st.booleans()), check), 1200)
