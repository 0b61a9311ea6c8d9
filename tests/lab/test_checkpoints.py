"""Checkpoints in both formats: exact round trips, the step read from the array store, one
format on disk at a time, and mismatching templates refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jopt.lab import checkpoints, outputs

LEAVES = [
    np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    np.asarray([-1, 5], np.int32),
    np.asarray([True, False]),
    np.asarray(np.pi, np.float64),
]


def _stem(tmp_path):
    return tmp_path / "checkpoints" / "momentum 0.9"


@pytest.mark.parametrize("fmt", checkpoints.FORMATS)
def test_save_then_load_gives_back_every_leaf_bitwise_and_the_step(tmp_path, fmt):
    stem = _stem(tmp_path)
    checkpoints.save(stem, LEAVES, 200, {"seeds": [0, 1]}, fmt)
    checkpoints.save(stem, [2 * x for x in LEAVES[:2]] + LEAVES[2:], 400, {"seeds": [0, 1]}, fmt)
    leaves, step = checkpoints.load(stem, LEAVES)
    assert step == 400
    for got, want in zip(leaves, [2 * x for x in LEAVES[:2]] + LEAVES[2:], strict=True):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
    record = outputs.read_json(stem.with_name(stem.name + ".json"))
    assert record == {"seeds": [0, 1], "step": 400, "leaves": 4, "format": fmt}


@pytest.mark.parametrize("fmt", checkpoints.FORMATS)
def test_saving_a_step_again_keeps_it(tmp_path, fmt):
    # A run's last periodic checkpoint and its final one fall on the same step.
    stem = _stem(tmp_path)
    checkpoints.save(stem, LEAVES, 400, {"seeds": [0]}, fmt)
    checkpoints.save(stem, LEAVES, 400, {"seeds": [0]}, fmt)
    leaves, step = checkpoints.load(stem, LEAVES)
    assert step == 400
    assert all(a.tobytes() == b.tobytes() for a, b in zip(leaves, LEAVES, strict=True))


@pytest.mark.parametrize("fmt", checkpoints.FORMATS)
def test_the_step_comes_from_the_array_store_not_the_json(tmp_path, fmt):
    # A crash after the arrays of step 400 were written but before the JSON was: the JSON
    # still says 200, and loading must not pair the new arrays with the old step.
    stem = _stem(tmp_path)
    checkpoints.save(stem, LEAVES, 400, {}, fmt)
    outputs.write_json(stem.with_name(stem.name + ".json"), {"step": 200})
    assert checkpoints.load(stem, LEAVES)[1] == 400


def test_saving_in_one_format_removes_the_other(tmp_path):
    stem = _stem(tmp_path)
    checkpoints.save(stem, LEAVES, 1, {}, "npz")
    checkpoints.save(stem, LEAVES, 2, {}, "orbax")
    assert sorted(p.name for p in stem.parent.iterdir()) == [
        "momentum 0.9.digests.json",
        "momentum 0.9.json",
        "momentum 0.9.orbax",
    ]
    checkpoints.save(stem, LEAVES, 3, {}, "npz")
    assert sorted(p.name for p in stem.parent.iterdir()) == [
        "momentum 0.9.digests.json",
        "momentum 0.9.json",
        "momentum 0.9.npz",
    ]
    assert checkpoints.load(stem, LEAVES)[1] == 3


@pytest.mark.parametrize("fmt", checkpoints.FORMATS)
@pytest.mark.parametrize(
    "templates",
    [
        LEAVES[:3],
        [*LEAVES, LEAVES[0]],
        [LEAVES[0].T, *LEAVES[1:]],
        [LEAVES[0].astype(np.float64), *LEAVES[1:]],
    ],
    ids=["fewer", "more", "shape", "dtype"],
)
def test_a_checkpoint_that_does_not_match_the_templates_is_refused(tmp_path, fmt, templates):
    stem = _stem(tmp_path)
    checkpoints.save(stem, LEAVES, 1, {}, fmt)
    with pytest.raises(ValueError, match="does not match the optimizer's state"):
        checkpoints.load(stem, templates)


def test_no_checkpoint_loads_as_none_and_an_unknown_format_is_refused(tmp_path):
    assert checkpoints.load(_stem(tmp_path), LEAVES) is None
    with pytest.raises(ValueError, match=r"format must be one of \('orbax', 'npz'\), got 'h5'"):
        checkpoints.save(_stem(tmp_path), LEAVES, 1, {}, "h5")


def _flip_bytes(directory: Path, step: int) -> None:
    """Flips 3 bytes in the middle of the largest data file of `step` (an orbax checkpoint)."""
    files = [p for p in (directory / str(step)).rglob("*") if p.is_file() and "d" in p.parts]
    target = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 3):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))


def test_a_damaged_newest_step_falls_back_to_the_one_before(tmp_path):
    stem = _stem(tmp_path)
    big = [np.arange(4096, dtype=np.float32) * s for s in (1.0, 2.0)]
    for step in (5, 10):
        checkpoints.save(stem, [b * step for b in big], step, {}, "orbax")
    _flip_bytes(stem.with_name(stem.name + ".orbax"), 10)
    leaves, step = checkpoints.load(stem, [b * 5 for b in big])
    assert step == 5
    for got, want in zip(leaves, big, strict=True):
        np.testing.assert_array_equal(got, want * 5)


def test_with_no_good_step_left_the_error_names_the_checkpoint(tmp_path):
    stem = _stem(tmp_path)
    big = [np.arange(4096, dtype=np.float32)]
    for step in (5, 10):
        checkpoints.save(stem, big, step, {}, "orbax")
    for step in (5, 10):
        _flip_bytes(stem.with_name(stem.name + ".orbax"), step)
    with pytest.raises(checkpoints.CorruptCheckpoint) as error:
        checkpoints.load(stem, big)
    message = str(error.value)
    assert message.startswith(f"checkpoint {stem.with_name(stem.name + '.orbax')} is damaged")
    assert "step 10:" in message and "step 5:" in message
    assert "delete it to train that optimizer again" in message


def test_a_damaged_npz_checkpoint_is_an_error_naming_it(tmp_path):
    stem = _stem(tmp_path)
    checkpoints.save(stem, [np.arange(4096, dtype=np.float32)], 7, {}, "npz")
    path = stem.with_name(stem.name + ".npz")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(checkpoints.CorruptCheckpoint, match=r"\.npz is damaged"):
        checkpoints.load(stem)


def test_a_step_saved_without_its_digest_is_not_trusted(tmp_path):
    stem = _stem(tmp_path)
    for step in (5, 10):
        checkpoints.save(stem, [np.full(8, float(step))], step, {}, "orbax")
    digests = stem.with_name(stem.name + ".digests.json")
    stored = outputs.read_json(digests)
    del stored["10"]  # the writer died between the arrays and their digest
    outputs.write_json(digests, stored)
    assert checkpoints.load(stem)[1] == 5


def test_a_tensorstore_write_failure_is_raised_as_the_os_error_naming_the_store(tmp_path):
    """orbax reports a full disk as tensorstore's ValueError with the OS error code in its text;
    other ValueErrors pass unchanged."""
    store = tmp_path / "Adam.orbax"
    message = "RESOURCE_EXHAUSTED: Failed to write 178 bytes: No space left [os_error_code='28']"
    with pytest.raises(OSError) as raised, checkpoints._as_os_error(store):
        raise ValueError(message)
    assert (raised.value.errno, raised.value.filename) == (28, str(store))
    assert raised.value.strerror == "No space left on device"
    with pytest.raises(ValueError, match="not an OS error"), checkpoints._as_os_error(store):
        raise ValueError("not an OS error")


def test_a_save_cut_short_is_cleared_before_the_next(tmp_path):
    if checkpoints.default_format() != "orbax":
        pytest.skip("orbax's temporary folders")
    stem = _stem(tmp_path)
    unfinished = stem.with_name(stem.name + ".orbax") / "20.orbax-checkpoint-tmp"
    (unfinished / "state").mkdir(parents=True)
    checkpoints.save(stem, [np.arange(3.0)], 20, {}, "orbax")
    assert not unfinished.exists()
    assert checkpoints.load(stem)[1] == 20


def _checkpoint_files(stem: Path) -> list[Path]:
    """Every file of the checkpoint: the newest orbax step's, the digests and the record."""
    newest = stem.with_name(stem.name + ".orbax") / "10"
    siblings = [stem.with_name(stem.name + suffix) for suffix in (".digests.json", ".json")]
    return sorted(p for p in newest.rglob("*") if p.is_file()) + siblings


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, min(len(data), len(data) // 2 + 3)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _saved(root: Path, steps: dict[int, list[np.ndarray]]) -> list[Path]:
    stem = _stem(root)
    for step, leaves in steps.items():
        checkpoints.save(stem, leaves, step, {}, "orbax")
    return _checkpoint_files(stem)


@pytest.mark.parametrize("damage", [_flip, _truncate], ids=["flipped", "truncated"])
def test_damage_to_any_checkpoint_file_never_restores_wrong_values(tmp_path, damage):
    """Each file of a two-step orbax checkpoint damaged in turn: the load gives the newest step's
    values exactly, or the step before's exactly, or one CorruptCheckpoint naming the store."""
    if checkpoints.default_format() != "orbax":
        pytest.skip("orbax's files")
    big = [np.arange(4096, dtype=np.float32), np.arange(7, dtype=np.int32)]
    want = {step: [b * step for b in big] for step in (5, 10)}
    outcomes = {}
    # A fresh checkpoint for each file damaged: data files are named by content hashes, and
    # orbax does not always write the same number of files, so the count is each save's own.
    i = 0
    while True:
        stem = _stem(tmp_path / str(i))
        files = _saved(tmp_path / str(i), want)
        if i >= len(files):
            break
        i += 1
        name = str(files[i - 1].relative_to(stem.parent))
        damage(files[i - 1])
        try:
            leaves, step = checkpoints.load(stem, want[5])
        except checkpoints.CorruptCheckpoint as e:
            assert str(e).startswith(f"checkpoint {stem.with_name(stem.name + '.orbax')}")
            assert name.endswith(".digests.json"), (name, e)  # only they make every step suspect
            assert f"its digests, {files[i - 1]}, are damaged" in str(e)
            outcomes[name] = "refused"
            continue
        for got, expected in zip(leaves, want[step], strict=True):
            np.testing.assert_array_equal(got, expected, err_msg=name)
        outcomes[name] = step
    assert len(outcomes) >= 6, outcomes


@pytest.mark.parametrize("fmt", checkpoints.FORMATS)
def test_an_empty_leaf_round_trips(tmp_path, fmt):
    # A state block without hyperparameters holds an empty array; orbax refuses to store one.
    stem = _stem(tmp_path)
    leaves = [LEAVES[0], np.zeros((0,), np.float32), np.zeros((2, 0), np.int32), LEAVES[3]]
    checkpoints.save(stem, leaves, 10, {}, fmt)
    got, step = checkpoints.load(stem, leaves)
    assert step == 10
    for a, b in zip(got, leaves, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
