"""keras.optimizers.Muon (Keras 3.15) as a jopt transform: same name, arguments, defaults, numbers.

Keras gives each variable Muon's step or AdamW's:

- AdamW for a leaf that is not a matrix, and, with `exclude_embeddings` (default), for one whose
  path contains "embedding" (any case), and for one whose path `re.search`es one of the
  `exclude_layers` patterns. Keras reads `variable.path` ("dense_1/kernel"); jopt reads the
  leaf's key path joined by "/" as `jopt.Group` writes it ({"dense_1": {"kernel": w}} ->
  "dense_1/kernel"; flax nnx's trailing ".value" left out), so that the same patterns pick the
  same layers of a model whose tree follows its layers' names;
- Muon's step for the others.

With lr the learning rate (Keras keeps it in a float32 variable: give a float32-exact rate to
reproduce a float64 run to 1e-10, as with every `jopt.keras` optimizer), t = 1 at the first step:

    theta = theta - theta * wd * lr              first: wd = weight_decay (Muon's leaves) or
                                                 adam_weight_decay (AdamW's), each None: none
    Muon:   m = m + (g + m (momentum - 1))       the heavy-ball buffer, m = momentum m + g
            M = g + momentum m   if nesterov else m
            theta -= (lr * NS(M)) * sqrt(max(A, B)) * rms_rate      (rms_rate None: lr * NS(M))
    AdamW:  m += (g - m)(1 - adam_beta_1);  v += (g^2 - v)(1 - adam_beta_2)
            theta -= m * a / (sqrt(v) + epsilon),
            a = lr_a sqrt(1 - adam_beta_2^t) / (1 - adam_beta_1^t),  lr_a = lr * adam_lr_ratio

NS is the quintic Newton-Schulz iteration with (muon_a, muon_b, muon_c), `ns_steps` times, on
M / (||M||_F + 1e-7) (transposed if A > B), in the variable's dtype, but for ||M||_F: Keras'
`ops.norm` computes it in float32 for a float64 M (its type promotion of float64 with a Python
float gives float32), and so does this twin. sqrt(max(A, B)) is computed in float32 too, as
Keras computes an integer's square root, and the weight decay of both kinds uses the learning
rate itself, not the AdamW rate.

Where it departs from `jopt.muon` (optax's Muon): heavy-ball momentum without bias correction,
no eps in the Newton-Schulz step beyond 1e-7, Liu et al.'s scale `0.2 sqrt(max(A, B))` by
default (Keras' rms_rate), the decays applied first, AdamW in Keras' "epsilon hat" form with a
rate ratio, and the path rules above. Keras' `exclude_from_weight_decay` is an argument here
(`jopt.keras`' common options), as are `use_ema`, `gradient_accumulation_steps` and the clips.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jopt._src import base, errors, path_rules, stateful, validation
from jopt._src.base import ScalarOrSchedule, Transform
from jopt._src.conventions.keras_arguments import check_globals, check_learning_rate
from jopt._src.conventions.keras_extras import with_keras_options
from jopt._src.hparams import HParams
from jopt._src.spec import Float, Spec
from jopt._src.stateful import stateful_transform
from jopt._src.transforms.learning_rate import LEARNING_RATE
from jopt._src.transforms.trust_ratio import leaf_mask

_DECAY = validation.DECAY
_NON_NEGATIVE = validation.NON_NEGATIVE
_STEP = Spec(
    LEARNING_RATE,
    # Keras computes `momentum - 1` and `1 - beta` in Python, from the float64 values.
    Float("momentum", _DECAY, complement=True),
    Float("adam_beta_1", _DECAY, complement=True),
    Float("adam_beta_2", _DECAY, complement=True),
    Float("epsilon", _NON_NEGATIVE),
    Float("weight_decay", _NON_NEGATIVE).as_optional(),
    Float("adam_weight_decay", _NON_NEGATIVE).as_optional(),
    Float("adam_lr_ratio", _NON_NEGATIVE),
    Float("rms_rate", _NON_NEGATIVE).as_optional(),
)


class KerasMuonState(NamedTuple):
    count: jax.Array  # steps taken (Keras' iterations), int32, saturating
    momentums: optax.Updates  # Keras' "momentum" of every variable (Muon's and AdamW's m)
    velocities: optax.Updates  # AdamW's "velocity"; optax.MaskedNode() on Muon's leaves
    hparams: HParams  # learning_rate, momentum, adam_beta_1/2, epsilon, the decays, the ratios


def uses_adamw(
    path: str, leaf: Any, exclude_layers: Sequence[str], exclude_embeddings: bool
) -> bool:
    """Keras' `_should_use_adamw` on a leaf's key path (see the module docstring)."""
    if jnp.ndim(leaf) != 2:
        return True
    if exclude_embeddings and "embedding" in path.lower():
        return True
    return any(re.search(pattern, path) for pattern in exclude_layers)


def newton_schulz(x: jax.Array, steps: int, a: float, b: float, c: float) -> jax.Array:
    """Keras' `zeropower_via_newtonschulz5` of a matrix, in its dtype."""
    tall = x.shape[-2] > x.shape[-1]
    if tall:
        x = x.T
    # Keras' `ops.norm` computes in `result_type(dtype, float)`, which its type promotion makes
    # float32 for a float64 matrix: the norm of a float64 M is that of M rounded to float32.
    norm_dtype = jnp.float32 if x.dtype == jnp.float64 else x.dtype
    norm = jnp.linalg.norm(x.astype(norm_dtype), axis=(-2, -1), keepdims=True) + 1e-7
    x = x / norm.astype(x.dtype)
    for _ in range(steps):
        gram = x @ x.T
        poly = b * gram + c * gram @ gram
        x = a * x + poly @ x
    return x.T if tall else x


def _step(fn, bound, exclude_layers, exclude_embeddings, coefficients, ns_steps, nesterov, mask):
    def plan(tree):
        return [
            uses_adamw(path, leaf, exclude_layers, exclude_embeddings)
            for path, leaf in path_rules.leaves(tree)
        ]

    def buffers(params):
        adamw = plan(params)
        leaves, treedef = jax.tree.flatten(params)
        velocities = [
            base.zeros_like(p) if adam else optax.MaskedNode()
            for p, adam in zip(leaves, adamw, strict=True)
        ]
        return {
            "momentums": base.zeros_like(params),
            "velocities": jax.tree.unflatten(treedef, velocities),
        }

    def step(updates, state, hp, count, params):
        adamw = plan(updates)
        grads, treedef = jax.tree.flatten(updates)
        weights = treedef.flatten_up_to(params)
        moments = treedef.flatten_up_to(state.momentums)
        velocities = treedef.flatten_up_to(state.velocities)
        decays = jax.tree.leaves(leaf_mask(mask, updates))
        lr32 = hp["learning_rate"].astype(jnp.float32)  # Keras' float32 learning-rate variable
        out, new_m, new_v = [], [], []
        for g, w, m, v, adam, decayed in zip(
            grads, weights, moments, velocities, adamw, decays, strict=True
        ):
            dt = g.dtype
            lr = lr32.astype(dt)
            decay_name = "adam_weight_decay" if adam else "weight_decay"
            decay = w * hp[decay_name].astype(dt) * lr if decayed and decay_name in hp else None
            if adam:
                step_, m, v = _adamw(g, m, v, hp, count, lr32)
            else:
                step_, m = _muon(g, m, hp, lr32, coefficients, ns_steps, nesterov)
            out.append(-step_ if decay is None else -decay - step_)
            new_m.append(m)
            new_v.append(v)
        unflatten = lambda leaves: jax.tree.unflatten(treedef, leaves)  # noqa: E731
        return unflatten(out), {"momentums": unflatten(new_m), "velocities": unflatten(new_v)}

    return stateful_transform(bound, KerasMuonState, buffers, step, needs_params=True)


def _muon(g, m, hp, lr32, coefficients, ns_steps, nesterov):
    """Keras' `_muon_update_step`: (the step subtracted, the new m)."""
    momentum = hp["momentum"].astype(g.dtype)
    m = m + (g + m * -hp.complement("momentum").astype(g.dtype))
    direction = g + momentum * m if nesterov else m
    update = newton_schulz(direction, ns_steps, *coefficients)
    step = lr32 * update  # the float32 rate times the update, promoted as in Keras
    if "rms_rate" in hp:
        # Keras' `ops.sqrt` of an integer: in float32.
        scale = jnp.sqrt(jnp.float32(max(g.shape[0], g.shape[1])))
        step = step * scale * hp["rms_rate"].astype(g.dtype)
    return step.astype(g.dtype), m


def _adamw(g, m, v, hp, count, lr32):
    """Keras' `_adamw_update_step`: (the step subtracted, the new m, the new v)."""
    dt = g.dtype
    lr = (lr32 * hp["adam_lr_ratio"].astype(jnp.float32)).astype(dt)
    t = count.astype(dt)
    b1, b2 = hp["adam_beta_1"].astype(dt), hp["adam_beta_2"].astype(dt)
    alpha = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
    m = m + (g - m) * hp.complement("adam_beta_1").astype(dt)
    v = v + (jnp.square(g) - v) * hp.complement("adam_beta_2").astype(dt)
    return (m * alpha) / (jnp.sqrt(v) + hp["epsilon"].astype(dt)), m, v


@errors.public("jopt.keras.Muon")
@with_keras_options
def Muon(  # noqa: N802 - Keras' name
    learning_rate: ScalarOrSchedule = 0.001,
    adam_beta_1: float = 0.9,
    adam_beta_2: float = 0.999,
    adam_weight_decay: float | None = 0.004,
    epsilon: float = 1e-7,
    weight_decay: float | None = 0.004,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    exclude_layers: Sequence[str] | None = None,
    exclude_embeddings: bool = True,
    muon_a: float = 3.4445,
    muon_b: float = -4.7750,
    muon_c: float = 2.0315,
    adam_lr_ratio: float = 1.0,
    momentum: float = 0.95,
    ns_steps: int = 5,
    nesterov: bool = True,
    rms_rate: float | None = 0.2,
    *,
    weight_decay_mask: Any = None,
) -> Transform:
    """keras.optimizers.Muon: Muon's step for matrices, Keras' AdamW for the other leaves and
    those the path rules exclude (see the module docstring).

    Checked more strictly than Keras: momentum and the betas in [0, 1), non-negative finite
    numbers, exclude_layers a list of regular expressions.
    """
    fn = errors.current_function()
    learning_rate = check_learning_rate(fn, learning_rate)
    common = check_globals(
        fn, learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, weight_decay_mask
    )
    exclude_layers = _patterns(fn, exclude_layers)
    exclude_embeddings = validation.check_bool(fn, "exclude_embeddings", exclude_embeddings)
    coefficients = tuple(
        validation.check_number(fn, name, value, validation.ANY_FINITE)
        for name, value in (("muon_a", muon_a), ("muon_b", muon_b), ("muon_c", muon_c))
    )
    ns_steps = validation.check_int(fn, "ns_steps", ns_steps, 0)
    nesterov = validation.check_bool(fn, "nesterov", nesterov)
    values = {
        "learning_rate": learning_rate,
        "momentum": momentum,
        "adam_beta_1": adam_beta_1,
        "adam_beta_2": adam_beta_2,
        "epsilon": epsilon,
        "weight_decay": common.weight_decay,
        "adam_weight_decay": adam_weight_decay,
        "adam_lr_ratio": adam_lr_ratio,
        "rms_rate": rms_rate,
    }
    bound = _STEP.bind(fn, **{k: v for k, v in values.items() if v is not None})
    step = _step(
        fn,
        bound,
        exclude_layers,
        exclude_embeddings,
        coefficients,
        ns_steps,
        nesterov,
        common.mask,
    )
    return stateful.chain(*common.clipping, step)


def _patterns(fn: str, exclude_layers: Any) -> tuple[str, ...]:
    if exclude_layers is None:
        return ()
    if isinstance(exclude_layers, str):  # Keras would search each of its characters
        raise validation.wrong_type(
            fn, "exclude_layers", exclude_layers, "a list of regular expressions, not one string"
        )
    try:
        patterns = tuple(exclude_layers)
        for pattern in patterns:
            re.compile(pattern)
    except (TypeError, re.error) as e:
        raise validation.wrong_type(
            fn, "exclude_layers", exclude_layers, "a list of regular expressions"
        ) from e
    return patterns
