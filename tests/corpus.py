"""A generated corpus of valid specs: blocks used at several sizes, conditions on every form.

``corpus_spec(seed)`` returns the YAML text of one random network built from block
templates that exercise what one class per block definition must handle: a block called
with different arguments and at different input sizes (a flatten -> linear head), a
``when`` on every form (layer, block call, unnamed and named sequence, concat, add, ref,
repeat), conditions on block parameters and on network parameters, nested repeats,
repeats whose count is a block parameter, 'same' padding of a parametric kernel, and
padding chosen by a condition. Deterministic: the seed fixes the spec.

>>> "blocks:" in corpus_spec(0)
True
"""

from __future__ import annotations

import random

# Block templates: name(params) -> YAML body lines (indented 4 spaces under the block key).
BLOCKS = {
    "Unit(out, k=3, s=1)": """\
    - conv: conv(out, k, stride=s, pad=k // 2, bias=false)
    - bn: batchnorm
    - relu""",
    "Res(c, s=1, act=true)": """\
    - add:
        - - conv(c, 3, stride=s, pad=1)
          - batchnorm
          - relu
          - conv(c, 3, pad=1)
        - skip: conv(c, 1, stride=s)
          when: s != 1 or in_channels != c
      act: relu if act""",
    "Mix(a, b, pool=false)": """\
    - concat:
        - branch_a: Unit(a, 1)
        - - Unit(b, 1)
          - Unit(b, 3)
        - seq:
            - maxpool(3, stride=1, pad=1)
            - Unit(a, 1)
          when: pool""",
    "Stack(n, c)": """\
    - repeat: n
      body: conv(c, 3, pad=1)
    - relu""",
    "Nest(n, c)": """\
    - proj: conv(c, 1)
    - layers:
        - repeat: n
          body:
            - repeat: 2
              body: conv(c, 3, pad=1)
            - relu""",
    "Opt(s)": """\
    - seq:
        - maxpool(2)
        - relu
      when: s == 2
    - add:
        - conv(in_channels, 3, pad=1)
        - identity
      when: s == 1
    - concat:
        - identity
        - identity
      when: s == 3""",
    "Same(k)": """\
    - conv(8, k, pad="same")
    - relu""",
    "Pad(s)": """\
    - conv(8, 3, stride=s, pad="same" if s == 1 else 1)""",
    "Ref2(c, back=true)": """\
    - first: conv(c, 1)
    - relu
    - ref: first
      when: back
    - conv(c, 3, pad=1)""",
    "Gate(c, use=true)": """\
    - unit: Unit(c, 1)
      when: use
    - head: conv(c, 1)
      when: not use""",
    "Head(n)": """\
    - flatten
    - fc: linear(n)""",
}

CALLS = {
    "Unit": lambda r: f"Unit({r.choice([8, 16, 24])}, {r.choice([1, 3])}, "
                      f"{r.choice([1, 1, 2])})",
    "Res": lambda r: f"Res({r.choice([8, 16])}, {r.choice([1, 2])}, "
                     f"{r.choice(['true', 'false'])})",
    "Mix": lambda r: f"Mix({r.choice([8, 16])}, {r.choice([8, 16])}, "
                     f"{r.choice(['true', 'false'])})",
    "Stack": lambda r: f"Stack({r.choice([0, 1, 2, 3])}, {r.choice([8, 16])})",
    "Nest": lambda r: f"Nest({r.choice([0, 1, 2])}, {r.choice([8, 16])})",
    "Opt": lambda r: f"Opt({r.choice([1, 2, 3])})",
    "Same": lambda r: f"Same({r.choice([1, 2, 3, 5])})",
    "Pad": lambda r: f"Pad({r.choice([1, 2])})",
    "Ref2": lambda r: f"Ref2({r.choice([8, 16])}, {r.choice(['true', 'false'])})",
    "Gate": lambda r: f"Gate({r.choice([8, 16])}, {r.choice(['true', 'false'])})",
}

NETWORK_FORMS = [
    "- pool{i}: maxpool(2)\n    when: use_pool",
    "- seq:\n      - conv(16, 1)\n      - relu\n    when: use_pool",
    "- add:\n      - relu\n      - identity\n    when: not use_pool",
    "- extra{i}:\n      - conv(16, 1)\n      - relu\n    when: use_pool",
]


def corpus_spec(seed: int) -> str:
    """The YAML text of corpus network number ``seed``."""
    r = random.Random(seed)
    size = r.choice([16, 24, 32])
    names = r.sample(sorted(CALLS), r.randint(3, 6))
    body = [f"- stem: Unit({r.choice([8, 16])}, 3)"]
    downsampled = 0
    for i in range(r.randint(3, 8)):
        name = r.choice(names)
        body.append(f"- b{i}: {CALLS[name](r)}")
        if r.random() < 0.25:
            body.append(f"  when: {r.choice(['use_pool', 'not use_pool', 'depth > 1'])}")
        if r.random() < 0.3 and downsampled < 1:
            body.append("- maxpool(2)")
            downsampled += 1
        if r.random() < 0.2:
            body.append(r.choice(NETWORK_FORMS).format(i=i))
    body += _head(r)
    used = {*names, "Unit", "Head"}
    blocks = "\n".join(f"  {sig}:\n{text}" for sig, text in BLOCKS.items()
                       if sig.split("(")[0] in used)
    return (f"format: 1\nname: corpus_{seed}\ninput: [3, {size}, {size}]\n"
            f"params:\n  num_classes: {r.choice([5, 10])}\n  use_pool: "
            f"{r.choice(['true', 'false'])}\n  depth: {r.choice([1, 2])}\n"
            f"blocks:\n{blocks}\nbody:\n" + "\n".join("  " + line for line in body) + "\n")


def _head(r: random.Random) -> list[str]:
    """Two heads read the same block at two input sizes (one class per size), or one."""
    if r.random() < 0.5:
        return ["- pooled: maxpool(2)", "- h1: Head(num_classes)",
                "- h2: Head(num_classes)\n    from: pooled"]
    return ["- global_avgpool", "- Head(num_classes)"]
