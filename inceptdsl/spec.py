"""The Spec model: what both front ends (YAML and the text DSL) produce.

The top level is validated with pydantic; the network body and block bodies are a small
tree of :class:`Node` objects, each with its :class:`SourceSpan`:

- :class:`Layer`: a call of an op or a block, ``conv(64, 1)`` or ``InceptionA(32)``;
- :class:`Seq`: layers one after another (a *named* sequence is a numbered submodule);
- :class:`Concat`: branches fed the same input, concatenated on channels;
- :class:`Add`: branches summed, the first one scaled, an optional activation after;
- :class:`Mul`: branches multiplied elementwise (a gate), shapes broadcasting;
- :class:`Repeat`: ``count`` copies of a body, numbered in the enclosing sequence;
- :class:`Ref`: the output of an earlier named node.

Every node may carry a ``name`` (it becomes the attribute name and hence the ``state_dict``
key), a ``when`` condition, ``side`` (a side output such as an aux head, with its loss
weight) and ``source`` (read another named node's output instead of the previous one).
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import SourceSpan, SpecError, did_you_mean
from .expr import CallExpr, Expr, Name, parse

FORMAT_VERSION = 1
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
FORM_KEYS = ("seq", "concat", "add", "mul", "repeat", "ref")
MODIFIER_KEYS = ("name", "when", "side", "loss_weight", "from", "inline", "scale", "act",
                 "split", "index", "body")
RESERVED = set(FORM_KEYS) | set(MODIFIER_KEYS)
KNOBS = {"width": 1.0}
# The range of each knob, (low, high], checked before use wherever the value comes from (a
# spec's params, --set, the API). A width above 1,000,000 scales every channel count past
# the per-layer limit of 1,000,000.
KNOB_RANGES = {"width": (0.0, 1_000_000.0)}


def value_problem(key: str, value: Any) -> str | None:
    """Why a parameter or knob value is refused, or None: numbers must be finite and within
    the limits of numbers written in expressions; knobs within :data:`KNOB_RANGES`.

    >>> value_problem("width", 0.5), value_problem("n", 1e300)
    (None, 'number too large (1e+300; the limit is 1e+12)')
    >>> value_problem("width", -1)
    'width must be more than 0 and at most 1e+06 (found -1)'
    """
    from .expr import MAX_INT

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"not a finite number ({value})"
    if abs(value) > MAX_INT:
        return f"number too large ({value:.3g}; the limit is {MAX_INT:.0e})"
    low, high = KNOB_RANGES.get(key, (None, None))
    if low is not None and not low < value <= high:
        return f"{key} must be more than {low:g} and at most {high:g} (found {value:g})"
    return None


# ---------------------------------------------------------------------------- nodes


@dataclass
class Node:
    """A node of a body; subclasses say what it computes."""

    span: SourceSpan
    name: str | None = field(default=None, kw_only=True)
    when: Expr | None = field(default=None, kw_only=True)
    side: bool = field(default=False, kw_only=True)
    loss_weight: Expr | None = field(default=None, kw_only=True)
    source: str | None = field(default=None, kw_only=True)
    source_span: SourceSpan | None = field(default=None, kw_only=True, repr=False)
    inline: bool = field(default=False, kw_only=True)


@dataclass
class Layer(Node):
    call: CallExpr

    @property
    def callee(self) -> str:
        return self.call.func


@dataclass
class Seq(Node):
    items: list[Node]


@dataclass
class Concat(Node):
    """Branches concatenated on channels; with ``split``, branch i reads the i-th run of
    input channels (``torch.split(x, split, dim=1)``) instead of the whole input."""

    branches: list[Node]
    split: Expr | None = None


@dataclass
class Add(Node):
    branches: list[Node]
    scale: Expr | None = None
    act: Expr | None = None


@dataclass
class Mul(Node):
    branches: list[Node]


@dataclass
class Repeat(Node):
    """``count`` copies of ``body``; ``index`` names the copy's number (0, 1, ...) in it."""

    count: Expr
    body: Node
    index: str | None = None


@dataclass
class Ref(Node):
    target: str


@dataclass
class BlockParam:
    name: str
    default: Expr | None
    span: SourceSpan


@dataclass
class BlockDef:
    """A reusable, parametric block: ``InceptionA(pool_features): ...``."""

    name: str
    params: list[BlockParam]
    body: Node
    span: SourceSpan
    signature: str = ""


@dataclass
class ParamValue:
    value: Any
    span: SourceSpan


@dataclass
class Spec:
    """A loaded spec, ``extends`` resolved and ``--set`` overrides applied."""

    name: str
    input: list[int]
    params: dict[str, ParamValue]
    blocks: dict[str, BlockDef]
    body: Seq
    path: str
    format: int = FORMAT_VERSION
    description: str = ""
    paper: str = ""
    reference: str = ""
    aliases: list[str] = field(default_factory=list)
    extends: str | None = None
    input_span: SourceSpan | None = None
    raw: Any = None
    variant: Any = None  # an edits.Variant when the spec extends a parent

    def param_values(self) -> dict[str, Any]:
        return {k: p.value for k, p in self.params.items()}


# ---------------------------------------------------------------------------- top level


class TopLevel(BaseModel):
    """The top-level keys of a spec file (validated after ``extends`` is merged)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    format: int = FORMAT_VERSION
    name: str
    description: str = ""
    paper: str = ""
    reference: str = ""
    aliases: list[str] = []
    extends: str | None = None
    input: list[int]
    params: dict[str, Any] = {}
    blocks: dict[str, Any] = {}
    body: list[Any]
    edits: list[Any] = []

    @field_validator("format", mode="before")
    @classmethod
    def _format_is_a_number(cls, value: Any) -> Any:
        if isinstance(value, (bool, str)):  # pydantic would read "1" and true as 1
            raise ValueError(f"the format version is the number {FORMAT_VERSION}, found "
                             f"{_yaml_text(value)}")
        return value

    @field_validator("input", mode="before")
    @classmethod
    def _input_numbers(cls, value: Any) -> Any:
        if isinstance(value, list) and any(isinstance(v, (bool, str)) for v in value):
            bad = next(v for v in value if isinstance(v, (bool, str)))
            raise ValueError("input must be [channels, height, width], whole numbers, found "
                             f"{_yaml_text(bad)}")
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: int) -> int:
        if value != FORMAT_VERSION:
            raise ValueError(f"unsupported format version {value} (this is format "
                             f"{FORMAT_VERSION})")
        return value

    @field_validator("input")
    @classmethod
    def _chw(cls, value: list[int]) -> list[int]:
        if len(value) != 3 or any(v < 1 or v > 65536 for v in value):
            raise ValueError("input must be [channels, height, width], each 1..65536")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_identifier(value, "spec name")
        return value


# Names the generated code itself uses where parameters live (constructor arguments):
# a parameter with one of these names would shadow a module, a builtin it calls, or self.
CODE_NAMES = frozenset(
    "self super nn F torch Tensor Optional jax jnp nnx np math namedtuple OrderedDict "
    "make_divisible rngs overrides int float bool str tuple list dict round min max abs "
    "ceil floor range len isinstance getattr setattr hasattr zip enumerate sum object "
    "type print".split())

# Module-level names the backends define in generated files (helpers, preludes, entry
# points): no generated class or forward variable may take one of them
# (tests/test_elaboration.py checks that every definition of the preludes is here).
GENERATED_NAMES = frozenset(
    # torch prelude, the inference optimizer's helpers, the entry points
    "L2Norm Scale PaddedConv2d LayerNorm2d DropPath drop_path ChannelSlice Pool2dPadded "
    "pool2d_padded same_padding BatchNorm1dNoScale BatchNorm2dNoScale "
    "InferenceModule TRAINING_ERROR fold_conv_bn conv2d_relu conv2d_plain fuse predict "
    "_ONEDNN_CONV _use_onednn _onednn_conv _fold_after_load "
    "create_model loss LOSS_WEIGHTS "
    # flax prelude
    "Sequential NamedSequential BatchNorm MaxPool2d AvgPool2d AdaptiveAvgPool2d "
    "AdaptiveMaxPool2d LocalResponseNorm max_pool2d avg_pool2d adaptive_avg_pool2d "
    "adaptive_max_pool2d local_response_norm l2_normalize flatten identity cross_entropy "
    "split_channels LayerScale _pair _padding _pool_pads _pool_window _window_counts "
    "_adaptive_pool _TORCH_NAMES _to_numpy _flax_layout _initialize "
    "load_torch_state_dict".split()) | CODE_NAMES


# What a layer name must not be: it becomes an attribute of a torch.nn.Module or a
# flax.nnx.Module, so it must not shadow their methods or the private state both keep in
# underscore attributes (torch 2.x: ``_modules``, ``_parameters``, ``_version`` ...; flax:
# ``_object__state`` ...). Names with ``__`` anywhere are reserved as well: flax keeps its
# state in such name-mangled attributes and may add more.
MODULE_ATTRIBUTES = frozenset(
    (
        # torch.nn.Module methods and public attributes
        "training forward parameters buffers children modules named_parameters named_buffers "
        "named_children named_modules state_dict load_state_dict train eval to cuda cpu float "
        "double half bfloat16 apply register_buffer register_parameter add_module "
        "register_module zero_grad requires_grad_ type extra_repr get_submodule get_parameter "
        "get_buffer dump_patches call_super_init compile ipu mtia xpu share_memory to_empty "
        "set_submodule get_extra_state set_extra_state register_backward_hook "
        "register_forward_hook register_forward_pre_hook register_full_backward_hook "
        "register_full_backward_pre_hook register_load_state_dict_post_hook "
        "register_load_state_dict_pre_hook register_state_dict_post_hook "
        "register_state_dict_pre_hook T_destination "
        # torch.nn.Module private state and methods
        "_apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl "
        "_forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs "
        "_forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks "
        "_get_backward_pre_hooks _get_name _is_full_backward_hook _load_from_state_dict "
        "_load_state_dict_post_hooks _load_state_dict_pre_hooks "
        "_maybe_warn_non_full_backward_hook _modules _named_members "
        "_non_persistent_buffers_set _parameters _register_load_state_dict_pre_hook "
        "_register_state_dict_hook _replicate_for_data_parallel _save_to_state_dict "
        "_slow_forward _state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl "
        # flax.nnx.Module (besides the name-mangled ones)
        "sow iter_modules iter_children perturb set_attributes split merge graph update "
        "_abc_impl _check_valid_context _check_value _graph_node_clear "
        "_graph_node_create_empty _graph_node_flatten _graph_node_init _graph_node_pop_key "
        "_graph_node_set_key _setattr"
    ).split()
)


def _yaml_text(value: Any) -> str:
    """A scalar as it reads in a spec: ``true``, ``'1'``, ``16``."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(str(value)) if isinstance(value, str) else str(value)


def check_layer_name(value: str) -> None:
    """A layer name: an identifier that is no attribute of a torch or flax module.

    >>> check_layer_name("_modules")
    Traceback (most recent call last):
    ValueError: '_modules' cannot name a layer: it is a method or attribute of every module
    >>> check_layer_name("_object__state")
    Traceback (most recent call last):
    ValueError: '_object__state' cannot name a layer: '__' marks the frameworks' private names
    """
    check_identifier(value, "name")
    if value in MODULE_ATTRIBUTES:
        raise ValueError(f"'{value}' cannot name a layer: it is a method or attribute of "
                         "every module")
    if "__" in value:
        raise ValueError(f"'{value}' cannot name a layer: '__' marks the frameworks' "
                         "private names")


def check_identifier(value: str, what: str) -> None:
    """A name that reaches generated code must be a plain, non-keyword, non-dunder identifier.

    >>> check_identifier("__import__('os')", "name")
    Traceback (most recent call last):
    ValueError: name '__import__('os')' is not a valid identifier
    """
    if not IDENTIFIER.match(value) or keyword.iskeyword(value) or value.startswith("__"):
        raise ValueError(f"{what} '{value}' is not a valid identifier")


def check_param_name(value: str, what: str) -> None:
    """A parameter name becomes a constructor argument: it must not shadow the code's names.

    >>> check_param_name("self", "parameter name")
    Traceback (most recent call last):
    ValueError: parameter name 'self' is reserved in the generated code; choose another name
    """
    check_identifier(value, what)
    if value in GENERATED_NAMES:
        raise ValueError(f"{what} '{value}' is reserved in the generated code; choose "
                         "another name")


def validate_top_level(doc: Any, path: str) -> TopLevel:
    """Validate the merged top-level mapping, turning pydantic errors into located ones."""
    if not isinstance(doc, dict):
        raise SpecError("a spec must be a mapping of keys (name, input, params, blocks, "
                        "body)", getattr(doc, "span", SourceSpan(path, 1, 1, 1, 2)))
    try:
        return TopLevel.model_validate(dict(doc))
    except ValidationError as exc:
        from .errors import SpecErrors

        errors = [_located(err, doc, path) for err in exc.errors()]
        raise SpecErrors(errors) from None


def _located(err: dict, doc: Any, path: str) -> SpecError:
    loc = list(err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        hint = did_you_mean(key, TopLevel.model_fields)
        return SpecError(f"unknown key '{key}'", doc.key_span(key), hint=hint)
    if err["type"] == "missing":
        return SpecError(f"missing required key '{loc[-1]}'", doc.span)
    span, node = doc.span, doc
    for part in loc:
        parent, node = node, _child(node, part)
        span = _child_span(parent, part, span)
        if node is None:
            break
    return SpecError(f"'{'.'.join(map(str, loc))}': {message}", span)


def _child(node: Any, part: Any) -> Any:
    try:
        return node[part]
    except (KeyError, IndexError, TypeError):
        return None


def _child_span(parent: Any, part: Any, default: SourceSpan) -> SourceSpan:
    if hasattr(parent, "value_span") and isinstance(part, str):
        return parent.value_span(part)
    if hasattr(parent, "item_span") and isinstance(part, int):
        return parent.item_span(part)
    return default


# ---------------------------------------------------------------------------- bodies


def parse_node(value: Any, span: SourceSpan) -> Node:
    """Turn a YAML value (string, list or mapping) into a body :class:`Node`.

    >>> from .yamlsrc import load_yaml
    >>> doc = load_yaml("- stem: conv(32, 3, stride=2)\\n- relu\\n", "x.yaml")
    >>> seq = parse_node(doc, doc.span)
    >>> [type(n).__name__ for n in seq.items], seq.items[0].name
    (['Layer', 'Layer'], 'stem')
    """
    span = getattr(value, "span", span)
    if isinstance(value, str):
        return _layer(value, span)
    if isinstance(value, list):
        return Seq(span, [_item(value, i) for i in range(len(value))])
    if isinstance(value, dict):
        return _mapping(value, span)
    raise SpecError(f"expected a layer, a list or a mapping, found {value!r}", span)


FLOW_HINT = ("in a YAML flow list '[a, b]' the commas inside a call split the items; write "
             "the list in block style, one '- item' per line (or quote each item)")


def _item(items: list, index: int) -> Node:
    """Parse one list item; a call split by a flow list's commas gets a hint saying so."""
    try:
        return parse_node(items[index], items.item_span(index))
    except SpecError as exc:
        if getattr(items, "flow", False) and _unbalanced(items[index]) and not exc.hint:
            exc.hint = FLOW_HINT
        raise


def _unbalanced(value: Any) -> bool:
    """Whether a string (or a one-key mapping's value) opens more brackets than it closes.

    >>> _unbalanced("conv(64"), _unbalanced("conv(64, 1)"), _unbalanced({"a": "f([1"})
    (True, False, True)
    """
    if isinstance(value, dict):
        return any(_unbalanced(v) for v in value.values())
    if not isinstance(value, str):
        return False
    return value.count("(") != value.count(")") or value.count("[") != value.count("]")


def _layer(text: str, span: SourceSpan) -> Layer:
    expr = parse(text, span)
    if isinstance(expr, Name):
        expr = CallExpr(expr.id, [], {}, pos=expr.pos, length=expr.length, base=expr.base)
        expr.func_length = expr.length
    if not isinstance(expr, CallExpr):
        raise SpecError(f"expected a layer such as 'conv(64, 1)', found '{text}'", span)
    return Layer(span, expr)


def _mapping(value: dict, span: SourceSpan) -> Node:
    forms = [k for k in value if k in FORM_KEYS]
    names = [k for k in value if k not in RESERVED]
    if len(forms) + len(names) > 1:
        extra = (forms + names)[1]
        raise SpecError(
            f"a node has one form; '{(forms + names)[0]}' and '{extra}' both given",
            value.key_span(extra),
            hint="put each layer in its own list item",
        )
    if not forms and not names:
        raise SpecError("this mapping has no layer: expected 'name: layer' or one of "
                        + ", ".join(FORM_KEYS), span)
    for key in names:
        _check_near_keyword(key, value.key_span(key))
    node = _named(value, names[0]) if names else _form(value, forms[0], span)
    _modifiers(node, value, forms[0] if forms else None)
    return node


def near_keyword(key: str) -> str | None:
    """The form or modifier keyword a body key misspells (one letter added, dropped,
    changed or swapped), or None. Keywords with a number are ordinary layer names.

    >>> near_keyword("concatt"), near_keyword("repeats"), near_keyword("when_")
    ('concat', 'repeat', 'when')
    >>> [near_keyword(k) for k in ("se", "fc", "act1", "add_1", "same", "sides")]
    [None, None, None, None, None, 'side']
    """
    if key in RESERVED or len(key) < 4 or re.fullmatch(r"[a-z_]+_?\d+", key):
        return None
    return next((word for word in (*FORM_KEYS, *MODIFIER_KEYS) if _one_edit(key, word)),
                None)


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` with one letter added, dropped, changed, or two swapped
    (changed only in words of five letters or more: ``same`` is not a typo of ``name``)."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return (len(diff) == 1 and len(b) > 4) or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def _check_near_keyword(key: str, span: SourceSpan) -> None:
    word = near_keyword(key)
    if word is not None:
        raise SpecError(f"'{key}' is read as a layer name, but it looks like the keyword "
                        f"'{word}'", span,
                        hint=f"did you mean '{word}'? To name a layer '{key}', write "
                             f"'name: {key}' next to its form (e.g. 'seq:')")


def _named(value: dict, name: str) -> Node:
    key_span = value.key_span(name)
    _check_name(name, key_span)
    if "name" in value:
        raise SpecError("a node is named either by its key or by 'name:', not both",
                        value.key_span("name"))
    node = parse_node(value[name], value.value_span(name))
    if node.name is not None:
        raise SpecError(f"'{name}' names a node that already has a name", key_span)
    node.name = name
    node.span = key_span
    return node


def _check_name(name: str, span: SourceSpan) -> None:
    try:
        check_layer_name(name)
    except ValueError as exc:
        raise SpecError(str(exc), span) from None


def _form(value: dict, form: str, span: SourceSpan) -> Node:
    arg, arg_span = value[form], value.value_span(form)
    if form == "seq":
        node = parse_node(arg, arg_span)
        return node if isinstance(node, Seq) else Seq(arg_span, [node])
    if form in ("concat", "add", "mul"):
        if not isinstance(arg, list) or not arg:
            raise SpecError(f"'{form}' takes a list of branches", arg_span)
        branches = [parse_node(b, arg.item_span(i)) for i, b in enumerate(arg)]
        return {"concat": Concat, "add": Add, "mul": Mul}[form](span, branches)
    if form == "repeat":
        if "body" not in value:
            raise SpecError("'repeat' needs a 'body' to repeat", value.key_span("repeat"))
        count = _expr(arg, arg_span)
        return Repeat(span, count, parse_node(value["body"], value.value_span("body")))
    target = str(arg)
    _check_name(target, arg_span)
    return Ref(arg_span, target)


def _expr(value: Any, span: SourceSpan) -> Expr:
    from .expr import Const

    if isinstance(value, str):
        return parse(value, span)
    if isinstance(value, (bool, int, float)) or value is None:
        return Const(value, base=span, length=max(1, span.end_col - span.col))
    raise SpecError(f"expected a number or an expression, found {value!r}", span)


def _modifiers(node: Node, value: dict, form: str | None) -> None:
    allowed = {"when", "side", "loss_weight", "from", "name", "inline"}
    allowed |= {"scale", "act"} if form == "add" else set()
    allowed |= {"body", "index"} if form == "repeat" else set()
    allowed |= {"split"} if form == "concat" else set()
    for key in value:
        if key in MODIFIER_KEYS and key not in allowed:
            raise SpecError(f"'{key}' does not apply here", value.key_span(key),
                            hint=_modifier_hint(key))
    if "name" in value:
        _check_name(str(value["name"]), value.value_span("name"))
        node.name = str(value["name"])
    if "when" in value:
        if value["when"] is None:
            raise SpecError("'when' needs a condition (a parameter or an expression), found "
                            "null", value.value_span("when"))
        node.when = _expr(value["when"], value.value_span("when"))
    if "side" in value and value["side"] is False and "loss_weight" in value:
        raise SpecError("'side: false' contradicts 'loss_weight': a loss weight makes the node "
                        "a side output", value.value_span("side"),
                        hint="drop 'side: false' (or the loss weight)")
    if "side" in value:
        if not isinstance(value["side"], bool):
            raise SpecError("'side' is true or false", value.value_span("side"))
        node.side = value["side"]
    if "loss_weight" in value:
        node.loss_weight = _expr(value["loss_weight"], value.value_span("loss_weight"))
        node.side = True
    if "inline" in value:
        if not isinstance(value["inline"], bool):
            raise SpecError("'inline' is true or false", value.value_span("inline"))
        node.inline = value["inline"]
    if "from" in value:
        _check_name(str(value["from"]), value.value_span("from"))
        node.source, node.source_span = str(value["from"]), value.value_span("from")
    if "split" in value:
        node.split = _list_expr(value["split"], value.value_span("split"))
    if "index" in value:
        _check_name(str(value["index"]), value.value_span("index"))
        node.index = str(value["index"])
    if isinstance(node, Add):
        if "scale" in value:
            node.scale = _expr(value["scale"], value.value_span("scale"))
        if "act" in value:
            node.act = _expr(value["act"], value.value_span("act"))


def _list_expr(value: Any, span: SourceSpan) -> Expr:
    """An expression, or a YAML list of them (``split: [in_channels - 3 * g, g, g, g]``)."""
    from .expr import ListExpr

    if not isinstance(value, list):
        return _expr(value, span)
    items = [_expr(v, value.item_span(i)) for i, v in enumerate(value)]
    return ListExpr(items, base=span, length=max(1, span.end_col - span.col))


def _modifier_hint(key: str) -> str | None:
    return {"split": "'split' belongs to a 'concat' node",
            "index": "'index' belongs to a 'repeat' node",
            "scale": "'scale' and 'act' belong to an 'add' node",
            "act": "'scale' and 'act' belong to an 'add' node",
            "body": "'body' belongs to a 'repeat' node"}.get(key)


def parse_block(key: str, value: Any, key_span: SourceSpan, value_span: SourceSpan) -> BlockDef:
    """Parse ``"InceptionA(pool_features)": body`` into a :class:`BlockDef`."""
    sig = parse(key, key_span)
    if isinstance(sig, Name):
        sig = CallExpr(sig.id, [], {}, pos=sig.pos, length=sig.length, base=sig.base)
    if not isinstance(sig, CallExpr):
        raise SpecError("a block is declared as 'Name(param, param=default)'", key_span)
    try:
        check_identifier(sig.func, "block name")
    except ValueError as exc:
        raise SpecError(str(exc), key_span) from None
    params = []
    for arg in sig.args:
        if not isinstance(arg, Name):
            raise SpecError("block parameters are names; give defaults as 'name=value'",
                            arg.span)
        params.append(BlockParam(arg.id, None, arg.span))
    params += [BlockParam(k, v, v.span) for k, v in sig.kwargs.items()]
    seen: set[str] = set()
    for p in params:
        try:
            check_param_name(p.name, "block parameter")
        except ValueError as exc:
            raise SpecError(str(exc), p.span) from None
        if p.name in seen:
            raise SpecError(f"parameter '{p.name}' declared twice", p.span)
        seen.add(p.name)
    body = parse_node(value, value_span)
    return BlockDef(sig.func, params, body, key_span, signature=key)
