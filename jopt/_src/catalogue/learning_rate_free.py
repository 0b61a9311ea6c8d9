"""Learning-rate-free methods: step sizes estimated from the distance travelled and the gradients
seen (Prodigy, D-Adaptation, DoG, DoWG, COCOB). Mechanic (`jopt.mechanize`) wraps another
optimizer, as `jopt.lookahead` does, and is a building block, not an entry: an example's base
optimizer is an object the NumPy references cannot take (tests/test_learning_rate_free.py
checks it against optax and its reference)."""

from __future__ import annotations

from jopt._src.catalogue import halving
from jopt._src.registry_types import Convergence, Example, Optimizer
from jopt._src.transforms import cocob, dadapt, dog, prodigy

# The examples are not the defaults (gamma = 1, d0 = 1e-6), for two reasons measured on the
# shared problem (tests/test_trajectories.py, 1000 steps; the defaults are checked bitwise against
# optax in tests/test_learning_rate_free.py):
# - from d0 = 1e-6 the first steps move the params by ~1e-6, and the estimate d is computed from
#   x0 - x, which float32 rounds to ~6e-8 absolute: the float32 trajectory strays up to 1e-2 from
#   the float64 reference while d grows;
# - at gamma = 1, Adam steps of about the distance to the solution make the iterates oscillate
#   chaotically near the minimum: the float64 trajectory itself is 1e-5 to 1 away from the
#   reference (rounding amplified) after 500 steps.
# gamma = 0.02-0.03 with d0 in [0.01, 1] keeps the steps stable and d well resolved: d grows to
# 0.8-1.2. optax's form stays 8e-6 from the float64 reference in float32, as Adam does (its bias
# correction 1 - b2**t cancels in float32); the paper's form, without it, 4e-6 at most.
_PRODIGY_PAPER = (
    "Mishchenko & Defazio 2023, Prodigy: An Expeditiously Adaptive Parameter-Free Learner"
)
_DADAPT_PAPER = "Defazio & Mishchenko 2023, Learning-Rate-Free Learning by D-Adaptation"
# DoG's and DoWG's float32 trajectories stray 3e-4 and 6e-6 from the reference with their default
# initial movements (r_eps = 1e-6 (1 + ||x0||), rbar_0^2 = 1e-4), for the same reason as d0 above;
# r_eps = 1e-2 (1 + ||x0||) and rbar_0^2 = 0.1 stay within 1e-6. (From rbar_0^2 = 1e-2, DoWG's
# first steps are still sensitive enough that a vmapped run, fused differently by XLA, ends 1.4e-6
# from the same run unbatched, over tests/test_hparams.py's 1e-6.)
_DOG_PAPER = (
    "Ivgi, Hinder & Carmon 2023, DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size "
    "Schedule"
)
_DOWG_PAPER = (
    "Khaled, Mishchenko & Jin 2023, DoWG Unleashed: An Efficient Universal Parameter-Free "
    "Gradient Descent Method"
)
_COCOB_PAPER = (
    "Orabona & Tommasi 2017, Training Deep Networks without Learning Rates Through Coin Betting"
)

ENTRIES: list[Optimizer] = [
    Optimizer(
        "prodigy",
        prodigy.prodigy,
        prodigy.PRODIGY,
        _PRODIGY_PAPER,
        "contrib.prodigy",
        {
            "prodigy": Example({"learning_rate": 0.03, "estim_lr0": 1.0}, optax=True),
            "prodigy_paper": Example(
                {"learning_rate": 0.03, "estim_lr0": 0.01, "form": "paper", "weight_decay": 0.01}
            ),
        },
        # At a constant gamma = 1 Prodigy's Adam steps, of about the distance to the solution,
        # cross Rosenbrock's valley back and forth and come no closer than 2e-2 (20,000 steps);
        # a decay to 0 settles them, as the authors advise (a linear or cosine one to 0).
        {"prodigy": Convergence({"learning_rate": halving(1.0, 700)}, 178, 1388)},
        scale_invariant=True,
        reads_params=True,
    ),
    Optimizer(
        "dadapt_adamw",
        dadapt.dadapt_adamw,
        dadapt.DADAPT_ADAMW,
        _DADAPT_PAPER,
        "contrib.dadapt_adamw",
        {
            "dadapt_adamw": Example({"learning_rate": 0.02, "estim_lr0": 0.5}, optax=True),
            "dadapt_adamw_paper": Example(
                {"learning_rate": 0.03, "estim_lr0": 0.01, "form": "paper", "weight_decay": 0.01}
            ),
        },
        {"dadapt_adamw": Convergence({"learning_rate": 1.0}, 155, 570)},
        scale_invariant=True,
        reads_params=True,
    ),
    Optimizer(
        "dog",
        dog.dog,
        dog.DOG,
        _DOG_PAPER,
        "contrib.dog",
        {
            # optax's pair (kind, value), which optax takes too.
            "dog": Example({"learning_rate": 1.0, "init_step": ("heuristic", 1e-2)}, optax=True),
            # The paper's form (eps = 0), from a given initial distance. (A coupled weight decay
            # would break the scale invariance the shared suite checks: it is checked against the
            # reference in tests/test_learning_rate_free.py, as DoWG's and COCOB's.)
            "dog_distance": Example(
                {"learning_rate": 1.0, "init_step": ("distance", 0.1), "eps": 0.0}, optax=True
            ),
        },
        # SGD's pace on Rosenbrock's curved valley.
        {"dog": Convergence({"learning_rate": 1.0}, 3219, 14750)},
        scale_invariant=True,
        reads_params=True,
    ),
    Optimizer(
        "dowg",
        dog.dowg,
        dog.DOWG,
        _DOWG_PAPER,
        "contrib.dowg",
        {
            "dowg": Example({"learning_rate": 1.0, "init_estim_sq_dist": 0.1}, optax=True),
            # The paper's form (eps = 0). Not optax's bits: optax bakes eps = 0 into its program,
            # where XLA turns rbar^2 / (sqrt(v) + 0) into rbar^2 * rsqrt(v) (an ulp apart).
            "dowg_paper": Example({"learning_rate": 1.0, "init_estim_sq_dist": 1.0, "eps": 0.0}),
        },
        # At gamma = 1 DoWG's steps overshoot across Rosenbrock's valley and the steps it takes
        # jump with the last digit of gamma (5,322 to 18,981 for gamma in [0.99, 1.01]);
        # at 0.3 they vary by 7% for a 1% change.
        {"dowg": Convergence({"learning_rate": 0.3}, 849, 8696)},
        scale_invariant=True,
        reads_params=True,
    ),
    Optimizer(
        "cocob",
        cocob.cocob,
        cocob.COCOB,
        _COCOB_PAPER,
        "contrib.cocob",
        {
            "cocob": Example({"learning_rate": 1.0}, optax=True),
            # The paper's L_0 = 0 (eps = 0), with optax's gradient scaling.
            "cocob_paper": Example({"learning_rate": 0.5, "alpha": 10.0, "eps": 0.0}, optax=True),
        },
        # Each coordinate's bet is scaled by 1 / L, the largest gradient seen: Rosenbrock's first
        # gradient (-216, -88) sets L, and the valley's gradients, 1e-2 to 1, then move the
        # params by little: the paper's alpha = 100 takes 138,477 steps to get within 1e-3 (2,233
        # on the quadratic). alpha = 10, larger bets from the start, takes 50,372.
        {"cocob": Convergence({"learning_rate": 1.0, "alpha": 10.0}, 328, 50372)},
        scale_invariant=True,
        reads_params=True,
    ),
]
