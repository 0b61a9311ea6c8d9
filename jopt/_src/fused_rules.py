"""The fused steps of jopt's optimizers: for each kernel of `kernels/fused_cpu.cc`, where its
scalars come from in the optimizer's chain state (see `jopt._src.fused`).

Each function returns the rule for one chain layout; the optimizer's constructor declares it
(`fused.declare`) for the configurations the kernel computes, and none for the others (a weight
decay mask, 8-bit state, Adam without bias correction, RMSProp's classic momentum form...);
moments in another dtype than the params' are refused at trace time (`fused.why_not`). A scalar
is computed and cast as the plain path computes it: hyperparameters cast to the leaves' dtype,
bias corrections in the hyperparameters' dtype then cast, and the reciprocal of a correction
taken in the leaves' dtype (XLA computes `m / c` as `m * (1 / c)`).
"""

from __future__ import annotations

import jax.numpy as jnp

from jopt._src import base, tree_math
from jopt._src.fused import FusedRule


def _neg_lr(state) -> jnp.ndarray:
    """-lr, from the chain's last block, the learning-rate scaling."""
    return -state[-1].hparams["learning_rate"]


def _bits(*flags: bool) -> int:
    return sum(1 << k for k, flag in enumerate(flags) if flag)


def momentum(decay: bool, nesterov: bool, form: str) -> FusedRule:
    """`jopt.sgd` with momentum: [coupled weight decay], momentum in the classic or EMA form,
    learning rate. (Plain SGD has no rule: XLA's one loop over it runs at the bandwidth.)"""
    block = 1 if decay else 0

    def scalars(state, dtype):
        wd = state[0].hparams["weight_decay"] if decay else jnp.zeros([])
        hp = state[block].hparams
        weight = hp.complement("dampening" if form == "classic" else "momentum")
        return [_neg_lr(state), wd, hp["momentum"], weight]

    return FusedRule("momentum", ((block, "trace"),), _bits(decay, nesterov), scalars)


def adam(
    decay: bool,
    amsgrad: str | None = None,
    corrected: tuple[bool, bool] = (True, True),
    nesterov: bool = False,
    coupled: bool = False,
) -> FusedRule:
    """`jopt.adam`, `adamw`, `nadam`, `nadamw`, `amsgrad`: Adam's moments (NAdam's look-ahead
    first moment with `nesterov`; AMSGrad's maximum of the raw or the corrected second moment,
    `amsgrad="raw"|"corrected"`; `corrected` says which moments are bias-corrected), [decoupled
    weight decay], learning rate. `coupled`: `jopt.torch.Adam`'s layout, an L2 term added to the
    gradients first (its weight decay, 0 included), then the moments and the learning rate."""
    if coupled and (decay or nesterov):
        raise ValueError("Adam's coupled L2 goes with neither a decoupled decay nor NAdam's.")
    block = 1 if coupled else 0

    def inverse_correction(hp, name, count, dtype, on=True):
        if not on:
            return jnp.ones([], dtype)  # x * 1 is x: the uncorrected moment
        return 1 / tree_math.bias_correction(hp[name], count).astype(dtype)

    def scalars(state, dtype):
        hp, count = state[block].hparams, state[block].count
        wd = state[1 - block].hparams["weight_decay"] if decay or coupled else jnp.zeros([])
        # NAdam's look-ahead divides m by 1 - b1**(t+1).
        ahead = inverse_correction(hp, "b1", base.increment(count), dtype, nesterov)
        return [
            hp["b1"],
            hp.complement("b1"),
            hp["b2"],
            hp.complement("b2"),
            inverse_correction(hp, "b1", count, dtype, corrected[0]),
            inverse_correction(hp, "b2", count, dtype, corrected[1]),
            hp["eps_root"],
            hp["eps"],
            wd,
            _neg_lr(state),
            ahead,
        ]

    buffers = ((block, "mu"), (block, "nu")) + (((block, "nu_max"),) if amsgrad else ())
    options = _bits(decay, amsgrad is not None, amsgrad == "corrected", nesterov, coupled)
    return FusedRule("adam", buffers, options, scalars)


def rmsprop(
    decay: bool, eps_in_sqrt: bool, centered: bool, momentum: bool, nesterov: bool
) -> FusedRule:
    """`jopt.rmsprop` without bias correction: [coupled weight decay], the RMS scaling
    (centered or not), then the learning rate, or momentum with the learning rate inside the
    buffer (`momentum_form="lr_inside"`, optax's)."""
    block = 1 if decay else 0

    def scalars(state, dtype):
        wd = state[0].hparams["weight_decay"] if decay else jnp.zeros([])
        hp = state[block].hparams
        mu = state[-1].hparams["momentum"] if momentum else jnp.zeros([])
        return [wd, hp["decay"], hp.complement("decay"), hp["eps"], _neg_lr(state), mu]

    buffers = ((block, "nu"),) + (((block, "mu"),) if centered else ())
    buffers += ((block + 1, "trace"),) if momentum else ()
    options = _bits(decay, eps_in_sqrt, centered, momentum, nesterov)
    return FusedRule("rmsprop", buffers, options, scalars)


def adagrad(eps_in_sqrt: bool) -> FusedRule:
    """`jopt.adagrad`: the sum of squares, learning rate."""

    def scalars(state, dtype):
        return [state[0].hparams["eps"], _neg_lr(state)]

    return FusedRule("adagrad", ((0, "sum_of_squares"),), _bits(eps_in_sqrt), scalars)


def lion() -> FusedRule:
    """`jopt.lion`: Lion's sign step and moment, decoupled weight decay, learning rate."""

    def scalars(state, dtype):
        hp = state[0].hparams
        return [
            hp["b1"],
            hp.complement("b1"),
            hp["b2"],
            hp.complement("b2"),
            state[1].hparams["weight_decay"],
            _neg_lr(state),
        ]

    return FusedRule("lion", ((0, "mu"),), 0, scalars)
