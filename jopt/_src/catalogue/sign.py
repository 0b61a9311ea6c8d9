"""Sign-based methods: steps from the signs of gradients or momenta (signSGD, Signum, Rprop)."""

from __future__ import annotations

from jopt._src.catalogue import LR, halving
from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import rprop, sign

# signSGD and Signum step by exactly lr: a power of two keeps float32's theta -= lr * sign(...)
# exact, so that float32 and the float64 reference take the same signs.
_SIGN_LR = {"learning_rate": 2**-13}
# Rprop reaches the minimum in ~100 steps; with step sizes down to the default 1e-6 it then
# moves by less than float32's rounding of the gradient can tell apart, and float32 takes other
# signs than the float64 reference (up to 1e-4 away). A floor of 1e-3 keeps every sign clear.
_RPROP = {**LR, "min_step_size": 1e-3}
_SIGN_PAPER = "Bernstein et al. 2018, signSGD: Compressed Optimisation for Non-Convex Problems"

ENTRIES: list[Optimizer] = [
    Optimizer(
        "sign_sgd",
        sign.sign_sgd,
        sign.SIGN_SGD,
        _SIGN_PAPER,
        "sign_sgd",
        {"sign_sgd": Example(_SIGN_LR, optax=True)},
        # Sign descent zigzags along Rosenbrock's curved valley: 12k steps (optax's own test
        # skips sign_sgd on Rosenbrock, "requires learning rate scheduling").
        {"sign_sgd": Convergence({"learning_rate": halving(0.005, 1000)}, 6031, 12442)},
        scale_invariant=True,
    ),
    Optimizer(
        "signum",
        sign.signum,
        sign.SIGNUM,
        _SIGN_PAPER,
        "signum",
        {"signum": Example(_SIGN_LR, optax=True)},
        {"signum": Convergence({"learning_rate": halving(0.005, 700)}, 1980, 3941)},
        scale_invariant=True,
    ),
    Optimizer(
        "rprop",
        rprop.rprop,
        rprop.RPROP,
        "Riedmiller & Braun 1993, A Direct Adaptive Method for Faster Backpropagation Learning: "
        "The RPROP Algorithm; iRprop- by default: Igel & Hüsken 2000, Improving the Rprop "
        "Learning Algorithm",
        "rprop",
        {
            # jopt's default applies each step when it is computed, optax 0.2.8's one update late.
            "rprop": Example(_RPROP),
            "rprop_stale": Example({**_RPROP, "stale_update": True}, optax=True),
        },
        # At the default floor of 1e-6 on the step sizes, Rosenbrock's valley traps Rprop in a
        # two-step cycle about 1.2e-3 from the minimum; 1e-9 lets it through.
        {"rprop": Convergence({"learning_rate": 0.01, "min_step_size": 1e-9}, 90, 3999)},
        scale_invariant=True,
    ),
]
