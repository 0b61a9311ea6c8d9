"""Parameter groups (`jopt.param_groups`, `jopt.Group`, `jopt.layerwise_groups`).

- Each group's leaves follow the trajectory of that group's optimizer run alone on them,
  bitwise: overrides of the base optimizer (learning rate, weight decay, betas), `lr_scale` on a
  constant and on a schedule, `l1`, a group's own optimizer; a frozen group never moves and
  keeps no optimizer state (its leaves' moments are gone from the state).
- Rules: globs within and across segments, "re:" and compiled regular expressions, functions,
  tuples; the first matching group wins; unmatched leaves go to the default group, or are an
  error naming them; flax nnx paths read without their ".value".
- Hyperparameters per group: `current_lr` and `get_hparams` map groups to values,
  `set_hparams(..., group=)` changes one group without recompiling, and vmaps over one group's
  values; a block outside the groups is shared by all.
- Bad groups are refused at construction, naming the group and the argument.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

STEPS = 30
PARAMS = {
    "body": {"w": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2), "b": jnp.array([0.3, -0.2])},
    "head": {"w": jnp.array([[0.5], [-0.4]]), "b": jnp.array([0.1])},
    "embed": jnp.linspace(0.0, 1.0, 35).reshape(7, 5),
}
ADAMW = functools.partial(jopt.adamw, learning_rate=1e-2, weight_decay=1e-2)


def _grad(params):
    """The gradient of a smooth function of every leaf (each leaf's own quadratic + tanh)."""
    return jax.tree.map(lambda p: 1.5 * (p - 0.25) + 0.1 * jnp.tanh(p), params)


@functools.partial(jax.jit, static_argnums=0)
def _run(tx, params):
    def step(carry, _):
        params, state = carry
        updates, state = tx.update(_grad(params), state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, state), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=STEPS)
    return params, state


def _subset(params, paths):
    return {p: leaf for p, leaf in _flat(params).items() if p in paths}


def _flat(params):
    return {
        jopt._src.path_rules.path_string(path): leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
    }


GROUPED = [
    (jopt.Group("head", "head/**", learning_rate=3e-2, b1=0.5), ADAMW(learning_rate=3e-2, b1=0.5)),
    (jopt.Group("no_decay", "**/b", weight_decay=0.0), ADAMW(weight_decay=0.0)),
    (jopt.Group("scaled", "body/w", lr_scale=0.25), ADAMW(learning_rate=2.5e-3)),
    (jopt.Group("own", "embed", optimizer=jopt.sgd(0.1, momentum=0.9)), jopt.sgd(0.1, 0.9)),
]
# Where XLA compiles a group's arithmetic differently inside the larger program: SGD's
# `momentum * m + g` is contracted to a fused multiply-add in one program and not the other
# (1 ulp at a step, 1.2e-7 relative after 30 steps here). Every other group is bitwise.
NOT_BITWISE = {"own": 5e-7}


def test_each_group_follows_its_own_optimizer_bitwise():
    groups = [group for group, _ in GROUPED]
    tx = jopt.param_groups(ADAMW, *groups, default=None)
    got, _ = _run(tx, PARAMS)
    assigned = jopt.assign_groups(PARAMS, *groups, default=None)
    for group, alone in GROUPED:
        paths = {p for p, name in assigned.items() if name == group.name}
        assert paths, group.name
        want, _ = _run(alone, _subset(PARAMS, paths))
        if group.name in NOT_BITWISE:
            rtol = NOT_BITWISE[group.name]
            chex.assert_trees_all_close(_subset(got, paths), want, rtol=rtol, atol=0)
        else:
            chex.assert_trees_all_equal(_subset(got, paths), want)


def test_lr_scale_scales_each_value_of_a_schedule_and_l1_is_added_to_the_gradients():
    schedule = jopt.cosine_decay_schedule(1e-2, STEPS)
    base = functools.partial(jopt.adam, learning_rate=schedule)
    tx = jopt.param_groups(base, jopt.Group("slow", "body/**", lr_scale=0.5, l1=1e-3))
    got, state = _run(tx, PARAMS)
    half = jopt.Schedule(lambda t: schedule(t) * 0.5)
    alone = optax.chain(jopt.add_l1_penalty(1e-3), jopt.adam(half))
    paths = {"body/w", "body/b"}
    want, alone_state = _run(alone, _subset(PARAMS, paths))
    chex.assert_trees_all_equal(_subset(got, paths), want)
    rates = jopt.current_lr(state)
    assert float(rates["slow"]) == float(jopt.current_lr(alone_state)) == 0.5 * schedule(29)
    assert float(rates["default"]) == float(schedule(STEPS - 1))


def test_a_frozen_group_never_moves_and_keeps_no_state():
    group = jopt.Group("frozen", "embed", frozen=True)
    tx = jopt.param_groups(ADAMW, group)
    got, state = _run(tx, PARAMS)
    chex.assert_trees_all_equal(got["embed"], PARAMS["embed"])
    assert all(leaf.shape != PARAMS["embed"].shape for leaf in jax.tree.leaves(state))
    not_frozen = jopt.param_groups(ADAMW, jopt.Group("frozen", "embed"))
    saved = _nbytes(not_frozen.init(PARAMS)) - _nbytes(tx.init(PARAMS))
    assert saved >= 2 * PARAMS["embed"].nbytes  # AdamW's mu and nu
    assert jopt.get_hparams(state)["frozen"] == {}
    assert "frozen" not in jopt.current_lr(state)


def _nbytes(tree) -> int:
    return sum(leaf.nbytes for leaf in jax.tree.leaves(tree))


# -- rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "matched"),
    [
        ("**/b", {"body/b", "head/b"}),
        ("*/w", {"body/w", "head/w"}),
        ("head/*", {"head/w", "head/b"}),
        ("**", {"body/w", "body/b", "head/w", "head/b", "embed"}),
        ("bod?/[wx]", {"body/w"}),
        ("body/[!w]", {"body/b"}),
        ("re:(body|head)/w", {"body/w", "head/w"}),
        (re.compile(r"e.*"), {"embed"}),
        (lambda path, leaf: leaf.ndim == 2, {"body/w", "head/w", "embed"}),
        (("embed", "head/b"), {"embed", "head/b"}),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_rules_pick_leaves_by_path(rule, matched):
    assigned = jopt.assign_groups(PARAMS, jopt.Group("g", rule), default="rest")
    assert {p for p, name in assigned.items() if name == "g"} == matched


def test_the_first_matching_group_wins():
    assigned = jopt.assign_groups(
        PARAMS, jopt.Group("biases", "**/b"), jopt.Group("head", "head/**"), default="rest"
    )
    assert assigned["head/b"] == "biases" and assigned["head/w"] == "head"
    assert assigned["embed"] == "rest"


def test_unmatched_leaves_without_a_default_are_named():
    tx = jopt.param_groups(ADAMW, jopt.Group("head", "head/**"), default=None)
    with pytest.raises(ValueError, match=r"3 leaves match no group .*: body/b, body/w, embed"):
        tx.init(PARAMS)


def test_flax_nnx_paths_leave_out_the_variable_value():
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    assert jopt.assign_groups(state, jopt.Group("b", "bias"), default="rest") == {
        "bias": "b",
        "kernel": "rest",
    }
    tx = jopt.param_groups(ADAMW, jopt.Group("b", "bias", learning_rate=0.5))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    assert float(jopt.current_lr(optimizer.opt_state)["b"]) == 0.5


def test_describe_groups_counts_leaves_and_parameters():
    table = jopt.describe_groups(PARAMS, jopt.Group("head", "head/**"), jopt.Group("e", "embed"))
    assert table.splitlines() == [
        "| group | leaves | parameters | paths |",
        "|---|---:|---:|---|",
        "| head | 2 | 3 | head/b, head/w |",
        "| e | 1 | 35 | embed |",
        "| default | 2 | 8 | body/b, body/w |",
    ]


# -- hyperparameters per group -------------------------------------------------------------------


def test_hyperparameters_are_read_and_set_per_group_without_recompiling():
    tx = jopt.param_groups(ADAMW, jopt.Group("head", "head/**", b1=0.5))
    state = tx.init(PARAMS)
    assert {k: float(v) for k, v in jopt.current_lr(state).items()} == pytest.approx(
        {"head": 1e-2, "default": 1e-2}
    )
    assert float(jopt.get_hparams(state)["head"]["b1"]) == 0.5
    assert float(jopt.get_hparams(state)["default"]["b1"]) == pytest.approx(0.9)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state):
        updates, state = tx.update(_grad(params), state, params)
        return optax.apply_updates(params, updates), state

    params, state = step(PARAMS, state)
    state = jopt.set_hparams(state, learning_rate=0.0, group="head")
    after, state = step(params, state)
    chex.assert_trees_all_equal(after["head"], params["head"])  # lr 0: the head stands still
    assert not np.array_equal(after["body"]["w"], params["body"]["w"])
    state = jopt.set_hparams(state, learning_rate=0.2)  # no group: every group
    assert all(float(v) == pytest.approx(0.2) for v in jopt.current_lr(state).values())


def test_vmap_over_one_groups_learning_rate():
    tx = jopt.param_groups(ADAMW, jopt.Group("head", "head/**"))
    rates = jnp.array([0.0, 1e-2, 1e-1])

    def one(rate):
        state = jopt.set_hparams(tx.init(PARAMS), learning_rate=rate, group="head")
        updates, _ = tx.update(_grad(PARAMS), state, PARAMS)
        return updates

    updates = jax.vmap(one)(rates)
    head = np.asarray(updates["head"]["w"])
    assert np.all(head[0] == 0) and np.allclose(head[2], 10 * head[1], rtol=1e-6)
    body = np.asarray(updates["body"]["w"])
    assert np.all(body == body[0])  # the other group does not depend on the head's rate


def test_a_block_outside_the_groups_is_shared_by_all():
    tx = optax.chain(
        jopt.clip_by_global_norm(1.0), jopt.param_groups(ADAMW, jopt.Group("h", "head/**"))
    )
    state = tx.init(PARAMS)
    assert float(jopt.get_hparams(state)["h"]["max_norm"]) == 1.0
    assert float(jopt.get_hparams(state)["default"]["max_norm"]) == 1.0
    with pytest.raises(jopt.ArgumentError, match="acts on every group: set it without group="):
        jopt.set_hparams(state, max_norm=2.0, group="h")
    assert float(jopt.get_hparams(jopt.set_hparams(state, max_norm=2.0))["h"]["max_norm"]) == 2.0


def test_groups_are_named_in_errors_of_set_hparams():
    state = jopt.param_groups(ADAMW, jopt.Group("head", "head/**")).init(PARAMS)
    with pytest.raises(jopt.ArgumentError, match="no parameter group 'tail' in this state; its "
                       "groups are 'default', 'head'"):  # fmt: skip
        jopt.set_hparams(state, learning_rate=0.1, group="tail")
    with pytest.raises(jopt.ArgumentError, match="this state has no parameter groups"):
        jopt.set_hparams(ADAMW().init(PARAMS), learning_rate=0.1, group="head")
    with pytest.raises(jopt.ArgumentError, match="no hyperparameter named 'momentum' in group"):
        jopt.set_hparams(state, momentum=0.1, group="head")


def test_optax_partition_of_jopt_optimizers_reads_per_group_too():
    tx = optax.partition({"a": jopt.sgd(0.1), "b": jopt.adam(0.2)}, {"w": "a", "v": "b"})
    state = tx.init({"w": jnp.ones(2), "v": jnp.ones(3)})
    assert {k: float(v) for k, v in jopt.current_lr(state).items()} == pytest.approx(
        {"a": 0.1, "b": 0.2}
    )


# -- layer-wise decay ----------------------------------------------------------------------------


def test_layerwise_groups_scale_the_rate_by_decay_to_the_depth():
    params = {"layers": [jnp.ones(2), jnp.ones(2), jnp.ones(2)], "head": jnp.ones(2)}

    def depth(path, leaf):
        return 0 if path == "head" else 3 - int(path.split("/")[1])

    groups = jopt.layerwise_groups(depth, decay=0.5, num_layers=3)
    state = jopt.param_groups(ADAMW, *groups, default=None).init(params)
    rates = {k: float(v) for k, v in jopt.current_lr(state).items()}
    assert rates == pytest.approx({f"depth{d}": 1e-2 * 0.5**d for d in range(4)})
    assert jopt.assign_groups(params, *groups, default=None)["layers/0"] == "depth3"
    too_deep = jopt.layerwise_groups(lambda path, leaf: 7, decay=0.5, num_layers=3)
    with pytest.raises(ValueError, match=r"depth\('head'\) is 7, not an integer in \[0, 3\]"):
        jopt.assign_groups(params, *too_deep)


# -- bad groups ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: jopt.Group("", "x"), "jopt.Group: name must be a non-empty string, got ''."),
        (lambda: jopt.Group("g", 3), "jopt.Group('g'): match must be a glob"),
        (lambda: jopt.Group("g", "re:(unclosed"), "'re:(unclosed' is not a regular expression"),
        (lambda: jopt.Group("g", ()), "an empty tuple of rules matches nothing"),
        (lambda: jopt.Group("g", "x", lr_scale=0.0), "jopt.Group('g'): lr_scale must be > 0"),
        (lambda: jopt.Group("g", "x", l1=-1.0), "jopt.Group('g'): l1 must be >= 0, got -1.0"),
        (lambda: jopt.Group("g", "x", frozen=1), "frozen must be True or False"),
        (
            lambda: jopt.Group("g", "x", frozen=True, learning_rate=0.1),
            "a frozen group takes no overrides of the base optimizer, got learning_rate",
        ),
        (
            lambda: jopt.Group("g", "x", optimizer=jopt.sgd(0.1), weight_decay=0.0),
            "a group with its own optimizer takes no overrides",
        ),
        (lambda: jopt.Group("g", "x", optimizer="sgd"), "optimizer must be an optax."),
        (
            lambda: jopt.param_groups(ADAMW, jopt.Group("g", "x"), jopt.Group("g", "y")),
            "jopt.param_groups: group names must be unique, got 'g' more than once",
        ),
        (
            lambda: jopt.param_groups(ADAMW, jopt.Group("default", "x")),
            "'default' more than once (the default group is named 'default'",
        ),
        (
            lambda: jopt.param_groups(ADAMW, jopt.Group("g", "x", betas=(0.9, 0.99))),
            "group 'g': jopt.adamw has no argument 'betas'; it takes learning_rate, b1, b2",
        ),
        (
            lambda: jopt.param_groups(ADAMW, jopt.Group("g", "x", b1=1.5)),
            "jopt.param_groups: group 'g': jopt.adamw: b1 must be in [0, 1), got 1.5.",
        ),
        (
            lambda: jopt.param_groups(jopt.adam(0.1), jopt.Group("g", "x", lr_scale=2.0)),
            "group 'g' changes lr_scale of the base optimizer, which was given built",
        ),
        (lambda: jopt.param_groups(ADAMW, "head/**"), "groups[0] must be a jopt.Group"),
        (
            lambda: jopt.layerwise_groups(lambda p, x: 0, decay=1.5, num_layers=2),
            "jopt.layerwise_groups: decay must be in (0, 1], got 1.5",
        ),
    ],
)
def test_bad_groups_are_refused_at_construction(build, message):
    with pytest.raises(jopt.ArgumentError) as raised:
        build()
    assert message in str(raised.value)


def test_torch_twins_take_lr_scale_on_their_lr():
    base = functools.partial(jopt.torch.AdamW, lr=1e-3)
    state = jopt.param_groups(base, jopt.Group("head", "head/**", lr_scale=0.5)).init(PARAMS)
    rates = {k: float(v) for k, v in jopt.current_lr(state).items()}
    assert rates == pytest.approx({"head": 5e-4, "default": 1e-3})


def test_the_docs_example_runs_and_prints_the_table_it_shows(capsys):
    text = (Path(__file__).parents[1] / "docs" / "groups.md").read_text()
    example, table = re.findall(r"```(?:python)?\n(.*?)```", text, re.S)[:2]
    namespace: dict = {}
    exec(compile(example, "docs/groups.md", "exec"), namespace)
    assert capsys.readouterr().out == table
    rates = {k: float(v) for k, v in jopt.current_lr(namespace["state"]).items()}
    assert rates == pytest.approx({"head": 3e-3, "no_decay": 1e-3, "default": 1e-3})
