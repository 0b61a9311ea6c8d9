"""Plots every jopt schedule over a common horizon, as one PNG of small multiples.

    .venv/bin/python experiments/schedules/plot_schedules.py          # -> schedules.png here

Each panel is one schedule family (the learning rate on the y axis, steps on the x axis); where a
family has variants (staircase, periodic, the two warmup conventions...) they share the panel.
Momentum schedules sit on a twin axis (right, dashed) next to the learning rate they go with.
The figure is written atomically: to a temporary file in the same folder, then renamed.
reduce_on_plateau is not plotted: it follows a metric, not the step count.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
from PIL import Image  # noqa: E402 - a dependency of matplotlib

import jopt  # noqa: E402

HERE = Path(__file__).resolve().parent
HEADROOM = 1.35  # y axes reach 1.35 x the highest value, leaving the top for the legend


def panels(n: int):
    """(title, [(label, lr schedule)], [(label, momentum schedule)]) for a horizon of n steps."""
    s = jopt
    return [
        ("constant_schedule(1)", [("", s.constant_schedule(1.0))], []),
        (
            f"exponential_decay(1, {n // 10}, 0.7)",
            [
                ("smooth", s.exponential_decay(1.0, n // 10, 0.7)),
                ("staircase=True", s.exponential_decay(1.0, n // 10, 0.7, staircase=True)),
                (
                    f"begin={n // 5}, end_value=0.2",
                    s.exponential_decay(1.0, n // 10, 0.7, n // 5, end_value=0.2),
                ),
            ],
            [],
        ),
        (
            f"step_decay(1, {n // 5}, 0.5)  [torch StepLR]",
            [("", s.step_decay(1.0, n // 5, 0.5))],
            [],
        ),
        (
            f"multistep_decay(1, [{3 * n // 10}, {6 * n // 10}, {8 * n // 10}], 0.3)",
            [("", s.multistep_decay(1.0, [3 * n // 10, 6 * n // 10, 8 * n // 10], 0.3))],
            [],
        ),
        (
            f"inverse_time_decay(1, {n // 10}, 0.5)",
            [
                ("smooth", s.inverse_time_decay(1.0, n // 10, 0.5)),
                ("staircase=True", s.inverse_time_decay(1.0, n // 10, 0.5, staircase=True)),
            ],
            [],
        ),
        (
            "polynomial_schedule(1, 0.05, power=2)",
            [
                (
                    f"transition_steps={8 * n // 10}",
                    s.polynomial_schedule(1.0, 0.05, 2.0, 8 * n // 10),
                ),
                (
                    f"cycle=True, {3 * n // 10} steps",
                    s.polynomial_schedule(1.0, 0.05, 2.0, 3 * n // 10, cycle=True),
                ),
            ],
            [],
        ),
        (
            f"linear_schedule(1, 0.05, {8 * n // 10}, begin={n // 10})",
            [("", s.linear_schedule(1.0, 0.05, 8 * n // 10, n // 10))],
            [],
        ),
        (
            f"cosine_decay_schedule(1, {6 * n // 10}, alpha=0.1)",
            [
                ("default (floor after the end)", s.cosine_decay_schedule(1.0, 6 * n // 10, 0.1)),
                ("exponent=3", s.cosine_decay_schedule(1.0, 6 * n // 10, 0.1, 3.0)),
                (
                    "periodic=True [torch]",
                    s.cosine_decay_schedule(1.0, 6 * n // 10, 0.1, periodic=True),
                ),
            ],
            [],
        ),
        (
            f"cosine_decay_restarts(1, {n // 10}, ...)",
            [
                ("t_mul=2", s.cosine_decay_restarts(1.0, n // 10, 2.0)),
                (
                    "t_mul=1, m_mul=0.8, alpha=0.1",
                    s.cosine_decay_restarts(1.0, n // 5, 1.0, 0.8, 0.1),
                ),
            ],
            [],
        ),
        (
            f"with_warmup(cosine_decay_schedule(1, {9 * n // 10}), {n // 10})",
            [
                (
                    "shape='linear'",
                    s.with_warmup(s.cosine_decay_schedule(1.0, 9 * n // 10), n // 10),
                ),
                (
                    "shape='cosine'",
                    s.with_warmup(
                        s.cosine_decay_schedule(1.0, 9 * n // 10), n // 10, shape="cosine"
                    ),
                ),
            ],
            [],
        ),
        (
            f"warmup_cosine_decay_schedule(0, 1, {n // 10}, {8 * n // 10}, 0.05)",
            [
                (
                    f"include warmup (optax): ends at {8 * n // 10}",
                    s.warmup_cosine_decay_schedule(0.0, 1.0, n // 10, 8 * n // 10, 0.05),
                ),
                (
                    f"exclude (Keras): ends at {9 * n // 10}",
                    s.warmup_cosine_decay_schedule(
                        0.0, 1.0, n // 10, 8 * n // 10, 0.05, decay_steps_include_warmup=False
                    ),
                ),
            ],
            [],
        ),
        (
            f"warmup_exponential_decay_schedule(0, 1, {n // 10}, {n // 10}, 0.7)",
            [
                (
                    "end_value=0.05",
                    s.warmup_exponential_decay_schedule(
                        0.0, 1.0, n // 10, n // 10, 0.7, 0, False, 0.05
                    ),
                )
            ],
            [],
        ),
        (
            f"warmup_constant_schedule(0, 1, {n // 10})",
            [("", s.warmup_constant_schedule(0.0, 1.0, n // 10))],
            [],
        ),
        (
            f"one_cycle_schedule({n}, 1)  [torch OneCycleLR]",
            [("lr, cos", s.one_cycle_schedule(n, 1.0))],
            [("one_cycle_momentum", s.one_cycle_momentum(n))],
        ),
        (
            f"one_cycle_schedule({n}, 1, 'linear', three_phase)",
            [("lr", s.one_cycle_schedule(n, 1.0, 0.3, "linear", three_phase=True))],
            [("momentum", s.one_cycle_momentum(n, 0.85, 0.95, 0.3, "linear", three_phase=True))],
        ),
        (
            f"cosine_onecycle_schedule({n}, 1)  [optax]",
            [("peaks 1 step after one_cycle_schedule", s.cosine_onecycle_schedule(n, 1.0))],
            [],
        ),
        (
            f"cyclic_schedule(0.1, 1, {n // 10})  [torch CyclicLR]",
            [("triangular", s.cyclic_schedule(0.1, 1.0, n // 10))],
            [("cyclic_momentum", s.cyclic_momentum(0.8, 0.9, n // 10))],
        ),
        (
            f"cyclic_schedule(0.1, 1, {n // 10}, {n // 20}, mode)",
            [
                ("triangular2", s.cyclic_schedule(0.1, 1.0, n // 10, n // 20, "triangular2")),
                (
                    "exp_range, gamma=0.998",
                    s.cyclic_schedule(0.1, 1.0, n // 10, n // 20, "exp_range", 0.998),
                ),
            ],
            [],
        ),
        (
            f"piecewise_constant([{3 * n // 10}, {6 * n // 10}], [1, .5, .1])",
            [
                (
                    "switch='at' (torch, optax); 'after' (Keras) is 1 step later",
                    s.piecewise_constant([3 * n // 10, 6 * n // 10], [1.0, 0.5, 0.1]),
                ),
            ],
            [],
        ),
        (
            f"piecewise_constant_schedule(1, {{{3 * n // 10}: .5, {6 * n // 10}: .2}})",
            [("", s.piecewise_constant_schedule(1.0, {3 * n // 10: 0.5, 6 * n // 10: 0.2}))],
            [],
        ),
        (
            f"piecewise_linear([0, {n // 10}, {n // 2}, {n}], [0, 1, .5, 0])",
            [("", s.piecewise_linear([0, n // 10, n // 2, n], [0.0, 1.0, 0.5, 0.0]))],
            [],
        ),
        (
            f"piecewise_interpolate_schedule(type, 1, {{{3 * n // 10}: .4, {7 * n // 10}: .25}})",
            [
                (
                    kind,
                    s.piecewise_interpolate_schedule(
                        kind, 1.0, {3 * n // 10: 0.4, 7 * n // 10: 0.25}
                    ),
                )
                for kind in ("linear", "cosine")
            ],
            [],
        ),
        (
            f"join_schedules([linear, cosine, constant], [{n // 10}, {6 * n // 10}])",
            [
                (
                    "",
                    s.join_schedules(
                        [
                            s.linear_schedule(0.0, 1.0, n // 10),
                            s.cosine_decay_schedule(1.0, n // 2, 0.2),
                            s.constant_schedule(0.05),
                        ],
                        [n // 10, 6 * n // 10],
                    ),
                )
            ],
            [],
        ),
        (
            "multiply_schedules(restarts, exponential)",
            [
                (
                    "",
                    s.multiply_schedules(
                        s.cosine_decay_restarts(1.0, n // 5, 1.0),
                        s.exponential_decay(1.0, n, 0.1),
                    ),
                )
            ],
            [],
        ),
        (
            f"per_epoch(step_decay(1, 2, 0.5), {n // 10})",
            [(f"epochs of {n // 10} steps", s.per_epoch(s.step_decay(1.0, 2, 0.5), n // 10))],
            [],
        ),
    ]


def _evaluate(schedule, steps: jax.Array):
    return jax.device_get(jax.vmap(schedule)(steps))


def draw(n: int, columns: int = 4):
    items = panels(n)
    rows = -(-len(items) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.9 * rows), squeeze=False)
    steps = jnp.arange(n, dtype=jnp.int32)
    for ax, (title, lrs, momenta) in zip(axes.flat, items, strict=False):
        top = 0.0
        for label, schedule in lrs:
            values = _evaluate(schedule, steps)
            top = max(top, float(values.max()))
            ax.plot(steps, values, lw=1.4, label=label or None)
        ax.set_title(title, fontsize=8.5)
        ax.set_ylabel("learning rate", fontsize=8)
        ax.set_ylim(0, HEADROOM * top)  # room for the legend above the curves
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if momenta:
            twin = ax.twinx()
            lo, hi = 1.0, 0.0
            for label, schedule in momenta:
                values = _evaluate(schedule, steps)
                lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
                twin.plot(steps, values, "--", color="tab:red", lw=1.2, label=label)
            twin.set_ylim(lo - 0.05 * (hi - lo), lo + HEADROOM * (hi - lo))
            twin.set_ylabel("momentum", fontsize=8, color="tab:red")
            twin.tick_params(labelsize=7, colors="tab:red")
            more_handles, more_labels = twin.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        if any(labels):
            columns = 2 if max(len(label) for label in labels) <= 24 else 1
            ax.legend(
                handles, labels, fontsize=6.5, loc="upper center", ncol=columns, framealpha=0.9
            )
    for ax in axes.flat[len(items) :]:
        ax.set_visible(False)
    for ax in axes.flat[: len(items)]:
        ax.set_xlabel("step", fontsize=7, labelpad=1)
    fig.suptitle(f"jopt schedules over {n} steps", fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return fig


def save_atomically(fig, path: Path, dpi: int, colors: int = 128) -> None:
    """Writes the PNG to a temporary file next to `path`, then renames it over `path`.

    The image is quantized to a palette of `colors` colors: a third of the size of the RGBA
    file matplotlib writes, with no visible change for line plots.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    image = Image.open(buffer).convert("RGB").quantize(colors=colors)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        image.save(tmp, format="PNG", optimize=True)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; the figure is for everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="the common horizon")
    parser.add_argument("--out", type=Path, default=HERE / "schedules.png")
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args()
    start = time.perf_counter()
    fig = draw(args.steps)
    save_atomically(fig, args.out, args.dpi)
    plt.close(fig)
    size = args.out.stat().st_size / 1024
    print(f"wrote {args.out} ({size:.0f} KiB) in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
