"""Two-dimensional test functions: optimizer paths you can draw, the pictures behind momentum.

- `canyon`: an ill-conditioned quadratic, 0.5 * (u^2 + condition * v^2), where (u, v) are (x, y)
  rotated by `angle` degrees. Plain gradient descent zigzags across the steep direction and crawls
  along the flat one; momentum averages the zigzag away. Start (-4, 1) in the (u, v) frame;
  minimum 0 at the origin.
- `rosenbrock`: (1 - x)^2 + 100 (y - x^2)^2, the curved banana valley (Rosenbrock 1960). The
  standard start (-1.2, 1); minimum 0 at (1, 1).
- `beale`: (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2 (Beale 1958): flat
  plateaus next to steep walls, where per-coordinate step sizes help. Start (1, 1.5); minimum 0 at
  (3, 0.5).
- `saddle`: x^2 - y^2. From (-1, 0.001), near the stable direction of the saddle point at the
  origin, gradient descent first slides towards the saddle and only slowly escapes along y;
  momentum escapes sooner. Unbounded below: no minimizer, the loss decreases without limit (a
  long run ends with an infinite loss, which the runner records as diverged).

The workload has no data (`train`, `valid`, `test` are None; `loss(params, x, y)` ignores x and
y); params are a float32 array (2,), the point (x, y), recorded at every logged step. Each seed
starts at the same point unless `start_noise` > 0. `info['value']` is the function itself, which
works on NumPy and JAX arrays alike (for contour plots); `info['window']` the plot window
((xmin, xmax), (ymin, ymax)), enlarged to include the start.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt._src import validation
from jopt.lab.workloads.base import Workload

NAME = "functions2d"
Window = tuple[tuple[float, float], tuple[float, float]]


def rosenbrock(x: Any, y: Any) -> Any:
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def beale(x: Any, y: Any) -> Any:
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def saddle(x: Any, y: Any) -> Any:
    return x**2 - y**2


def canyon(x: Any, y: Any, condition: float = 50.0, angle: float = 0.0) -> Any:
    """0.5 * (u^2 + condition * v^2), (u, v) = (x, y) rotated by `angle` degrees."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    u, v = c * x + s * y, -s * x + c * y
    return 0.5 * (u**2 + condition * v**2)


@dataclasses.dataclass(frozen=True)
class Function2D:
    """A 2-D function with its default start, its minimizer (None if unbounded) and plot window."""

    value: Callable[[Any, Any], Any]  # (x, y) -> f, for NumPy and JAX arrays alike
    start: tuple[float, float]
    minimizer: tuple[float, float] | None
    window: Window


def _canyon(options: Options) -> Function2D:
    c, s = math.cos(math.radians(options.angle)), math.sin(math.radians(options.angle))

    def to_xy(u: float, v: float) -> tuple[float, float]:  # the inverse rotation
        return (c * u - s * v, s * u + c * v)

    corners = [to_xy(u, v) for u in (-5.0, 5.0) for v in (-2.0, 2.0)]
    xs, ys = zip(*corners, strict=True)
    return Function2D(
        value=lambda x, y: canyon(x, y, options.condition, options.angle),
        start=to_xy(-4.0, 1.0),
        minimizer=(0.0, 0.0),
        window=((min(xs), max(xs)), (min(ys), max(ys))),
    )


FUNCTIONS: dict[str, Callable[[Options], Function2D]] = {
    "canyon": _canyon,
    "rosenbrock": lambda options: Function2D(
        rosenbrock, (-1.2, 1.0), (1.0, 1.0), ((-2.0, 2.0), (-1.0, 3.0))
    ),
    "beale": lambda options: Function2D(beale, (1.0, 1.5), (3.0, 0.5), ((-0.5, 4.0), (-1.0, 2.0))),
    "saddle": lambda options: Function2D(saddle, (-1.0, 1e-3), None, ((-1.5, 1.5), (-1.5, 1.5))),
}


@dataclasses.dataclass(frozen=True)
class Options:
    """Options of the `functions2d` workload.

    Attributes:
      function: 'canyon', 'rosenbrock', 'beale' or 'saddle'.
      start: the starting point [x, y]; null: the function's standard start (see the module doc).
      start_noise: std of a Gaussian perturbation of the start, drawn from the trial seed (>= 0);
        with 0 every seed starts at the same point.
      condition: canyon only: the ratio of the curvatures across and along the canyon (>= 1).
      angle: canyon only: the canyon's rotation in degrees (0: the steep direction is y).
    """

    function: str = "rosenbrock"
    start: tuple[float, float] | None = None
    start_noise: float = 0.0
    condition: float = 50.0
    angle: float = 0.0

    def __post_init__(self):
        validation.check_choice(NAME, "function", self.function, tuple(FUNCTIONS))
        if self.start is not None:
            start = tuple(self.start)
            validation.require(
                NAME,
                len(start) == 2,
                f"start must be a pair [x, y], got {self.start!r}.",
                argument="start",
                value=self.start,
            )
            for i, value in enumerate(start):
                validation.check_number(NAME, f"start[{i}]", value, validation.ANY_FINITE)
            object.__setattr__(self, "start", tuple(float(v) for v in start))
        validation.check_number(NAME, "start_noise", self.start_noise, validation.NON_NEGATIVE)
        validation.check_number(NAME, "condition", self.condition, validation.Range(1.0))
        validation.check_number(NAME, "angle", self.angle, validation.ANY_FINITE)


def metric_names(options: Options) -> tuple[str, ...]:
    """The keys of `metrics`: the loss, and the distance to the minimizer where there is one."""
    bounded = FUNCTIONS[options.function](options).minimizer is not None
    return ("loss", "distance") if bounded else ("loss",)


def _enlarged(window: Window, start: tuple[float, float], noise: float) -> Window:
    """`window`, grown where needed to show `start` (and its noise) with a margin."""
    axes = []
    for (lo, hi), s in zip(window, start, strict=True):
        pad = 0.1 * (hi - lo) + 3.0 * noise
        axes.append((min(lo, s - pad), max(hi, s + pad)))
    return tuple(axes)


def build(options: Options) -> Workload:
    fn = FUNCTIONS[options.function](options)
    start = fn.start if options.start is None else options.start
    start_array = jnp.asarray(start, jnp.float32)
    noise = options.start_noise

    def init_params(key: jax.Array) -> jax.Array:
        return start_array + noise * jax.random.normal(key, (2,), jnp.float32)

    def loss(params, x=None, y=None):
        return fn.value(params[0], params[1])

    if fn.minimizer is None:

        def metrics(params, x=None, y=None):
            return {"loss": loss(params)}

    else:
        minimizer = jnp.asarray(fn.minimizer, jnp.float32)

        def metrics(params, x=None, y=None):
            return {"loss": loss(params), "distance": jnp.linalg.norm(params - minimizer)}

    return Workload(
        name=NAME,
        init_params=init_params,
        loss=loss,
        metrics=metrics,
        batch_size=None,
        record_params=True,
        info={
            "function": options.function,
            "start": list(start),
            "minimizer": None if fn.minimizer is None else list(fn.minimizer),
            "minimum": None if fn.minimizer is None else 0.0,
            "window": _enlarged(fn.window, start, noise),
            "value": fn.value,
        },
    )
