"""What a newcomer trips over (issue 18), the rest of it, tried through the CLI as a user meets it."""

from __future__ import annotations

import click
import pytest

from conftest import SAMPLES, assert_error, run_cli
from convcli.cli import main
from convcli.cli.sections import SECTION_OF, SECTIONS


def _commands() -> list[tuple[str, click.Command]]:
    """Every command and subcommand of ``convcli``, with its path."""
    found: list[tuple[str, click.Command]] = []

    def walk(command: click.Command, path: str) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, f"{path} {name}")

    walk(main, "convcli")
    return found


# ---------------------------------------------------------------------------
# Help in sections


def test_every_option_of_every_command_is_in_a_help_section():
    missing = [
        f"{path} {param.name}"
        for path, command in _commands()
        for param in command.params
        if isinstance(param, click.Option) and param.name not in SECTION_OF
    ]
    assert not missing, f"add these options to convcli.cli.sections.SECTIONS: {missing}"
    assert sum(len(names) for names in SECTIONS.values()) == len(SECTION_OF), "an option is in two sections"
    for name in ("origin", "same_extra"):  # coming from the geometry work: already placed
        assert SECTION_OF[name] == "Geometry"


def test_filter_help_shows_examples_first_and_options_in_sections():
    run = run_cli(["filter", "--help"])
    assert run.exit_code == 0, run
    text = run.stdout
    assert "\nOptions:" not in text
    order = ["Examples:", "SOURCE is an image", "\nOperation:", "\nGeometry:", "\nOutputs:", "\nBatch:", "\nOther:"]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions), text
    geometry = text[text.index("\nGeometry:") : text.index("\nSources:")]
    assert "--stride" in geometry and "--pad-mode" in geometry and "--outdir" not in geometry
    assert "--strip-rows" not in text  # hidden stays hidden


@pytest.mark.parametrize("path", [["pool"], ["upsample"], ["learn"], ["kernels"], ["kernels", "show"], ["animate"]])
def test_other_commands_have_sectioned_help(path):
    run = run_cli([*path, "--help"])
    assert run.exit_code == 0 and "\nOptions:" not in run.stdout and "\nOther:" in run.stdout, run


# ---------------------------------------------------------------------------
# Did you mean


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["filter", SAMPLES / "x.txt", "--kernal", "1"], "no such option '--kernal'; did you mean '--kernel'?"),
        (["pool", SAMPLES / "x.txt", "--strid", "2"], "did you mean '--stride'"),
        (["fliter", "x"], "no such command 'fliter'; did you mean 'filter'?"),
        (["kernels", "shwo", "sobel-x"], "no such command 'shwo'; did you mean 'show'?"),
        (["animate", "filtr"], "no such command 'filtr'; did you mean 'filter'?"),
    ],
)
def test_an_unknown_option_or_command_gets_a_suggestion(args, expected):
    assert_error(run_cli(args), 2, expected)


def test_no_suggestion_when_nothing_is_close_and_hidden_options_are_not_suggested():
    run = run_cli(["filter", SAMPLES / "x.txt", "-k", "1", "--zzzz"])
    assert_error(run, 2, "no such option '--zzzz' (see 'convcli filter --help')")
    run = run_cli(["filter", SAMPLES / "x.txt", "-k", "1", "--strip-row", "2"])
    assert_error(run, 2, "no such option '--strip-row'")
    assert "--strip-rows" not in run.stderr


# ---------------------------------------------------------------------------
# A folder as a source


@pytest.fixture
def photos(tmp_path):
    """photos/{camera.png, b.jpg, notes.txt, .hidden.png, sub/camera.png, .git/x.png}."""
    import shutil

    from PIL import Image

    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    shutil.copy(SAMPLES / "camera.png", root / "camera.png")
    Image.open(SAMPLES / "coffee.png").convert("RGB").save(root / "b.JPG", quality=90)
    shutil.copy(SAMPLES / "chelsea.png", root / "sub" / "camera.png")  # same name as the top one
    shutil.copy(SAMPLES / "x.txt", root / "notes.txt")
    (root / ".hidden.png").write_bytes(b"not an image")
    (root / ".git" / "x.png").write_bytes(b"not an image")
    return root


def _outputs(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_folder_gives_its_images_sorted(photos, tmp_path):
    out = tmp_path / "out"
    run = run_cli(["filter", photos, "-k", "vertical", "--outdir", out])
    assert run.exit_code == 0, run
    assert _outputs(out) == ["b-vertical.png", "camera-vertical.png"]  # not notes.txt, not hidden, not sub/
    lines = run.stderr.splitlines()
    assert lines[0].startswith(f"{photos / 'b.JPG'} 400x600 (HxW, JPEG") and str(photos / "camera.png") in lines[1]
    assert lines[-1].startswith("2 sources: 2 done, 0 failed")
    from PIL import Image

    with Image.open(out / "b-vertical.png") as image:
        assert image.size == (598, 398)  # W x H of a 400x600 (HxW) photo, 3x3 valid


def test_recursive_keeps_each_subfolder_so_same_names_do_not_clash(photos, tmp_path):
    out = tmp_path / "out"
    run = run_cli(["filter", photos, "-k", "vertical", "--outdir", out, "--recursive"])
    assert run.exit_code == 0, run
    assert _outputs(out) == ["b-vertical.png", "camera-vertical.png", "sub/camera-vertical.png"]
    for tool in (["pool", "-k", "2"], ["upsample", "-k", "nearest", "-s", "2"]):
        done = run_cli([tool[0], photos, *tool[1:], "-o", f"{tmp_path / tool[0]}/", "--recursive"])  # -o DIR/
        assert done.exit_code == 0, done
        assert len(_outputs(tmp_path / tool[0])) == 3 and any("sub/" in p for p in _outputs(tmp_path / tool[0]))


def test_an_empty_folder_and_a_stray_recursive_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty"
    (empty / "deeper").mkdir(parents=True)
    (empty / "readme.txt").write_text("no images here\n")
    assert_error(run_cli(["filter", empty, "-k", "1"]), 1, "holds no image", "--recursive looks in its subfolders")
    assert_error(run_cli(["filter", empty, "-k", "1", "--recursive"]), 1, "holds no image")
    assert_error(run_cli(["filter", SAMPLES / "x.txt", "-k", "1", "--recursive"]), 2, "no source is a folder")
    assert_error(run_cli(["explain", empty, "-k", "1"]), 1, "is a folder; give an image file")


# ---------------------------------------------------------------------------
# Signed results: a robust, symmetric default


def _png(path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image)


def test_a_signed_edge_map_is_mapped_symmetric_at_the_99_5th_percentile(tmp_path):
    import numpy as np

    raw = tmp_path / "edges.npy"
    assert run_cli(["filter", SAMPLES / "chelsea.png", "-k", "vertical", "-o", raw]).exit_code == 0
    values = np.load(raw).astype(np.float32)
    run = run_cli(["filter", SAMPLES / "chelsea.png", "-k", "vertical", "-o", tmp_path / "edges.png"])
    assert run.exit_code == 0, run
    bound = float(np.sort(np.abs(values).ravel())[int(np.ceil(0.995 * values.size)) - 1])
    assert f"[{-bound:.4g}, {bound:.4g}] -> 0..255 (percentile:99.5, " in run.stderr and "saturated)" in run.stderr
    expected = np.rint(np.clip((values + bound) * np.float32(255 / (2 * bound)), 0, 255)).astype(np.uint8)
    np.testing.assert_array_equal(_png(tmp_path / "edges.png"), expected)
    assert np.count_nonzero(expected == 255) + np.count_nonzero(expected == 0) < 0.02 * values.size
    # minmax (the old default) is still there, and flat: most pixels within a few levels of mid-grey
    run = run_cli(["filter", SAMPLES / "chelsea.png", "-k", "vertical", "--scale", "minmax", "-o", tmp_path / "m.png"])
    assert run.exit_code == 0 and "(minmax)" in run.stderr, run
    spread = lambda pixels: np.percentile(np.abs(pixels.astype(int) - 128), 90)  # noqa: E731
    assert spread(_png(tmp_path / "m.png")) < spread(expected) / 2


def test_an_image_like_signed_result_keeps_minmax_and_percentile_takes_a_value(tmp_path):
    run = run_cli(["filter", SAMPLES / "chelsea.png", "-k", "sharpen", "-o", tmp_path / "s.png"])
    assert run.exit_code == 0 and "(minmax)" in run.stderr, run  # 1% negative: not an edge map
    run = run_cli(
        ["filter", SAMPLES / "chelsea.png", "-k", "sharpen", "--scale", "percentile:99", "-o", tmp_path / "p.png"]
    )
    assert run.exit_code == 0 and "(percentile:99, " in run.stderr, run
    assert_error(
        run_cli(["filter", SAMPLES / "x.txt", "-k", "1", "--scale", "percentile:40", "-o", tmp_path / "x.png"]),
        2,
        "the percentile must be above 50 and at most 100",
    )
    assert_error(run_cli(["filter", SAMPLES / "x.txt", "-k", "1", "--scale", "median"]), 2, "unknown scale 'median'")


@pytest.mark.parametrize("scale", ["auto", "percentile", "percentile:97.5"])
@pytest.mark.parametrize("kernel", ["vertical", "sharpen"])
def test_streamed_runs_write_the_bytes_of_the_in_memory_run(tmp_path, scale, kernel):
    memory, streamed = tmp_path / "m.png", tmp_path / "s.png"
    base = ["filter", SAMPLES / "coffee.png", "-k", kernel, "--scale", scale, "-q"]
    assert run_cli([*base, "-o", memory, "--no-stream"]).exit_code == 0
    run = run_cli([*base, "-o", streamed, "--stream", "--strip-rows", "7"])
    assert run.exit_code == 0, run
    assert memory.read_bytes() == streamed.read_bytes()


def test_a_scan_by_strips_chooses_the_ends_of_the_whole_array():
    import numpy as np
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    from convcli.io.pixels import RangeScan, _ArrayStats, choose_ends

    @settings(max_examples=60, deadline=None)
    @given(
        values=hnp.arrays(
            np.float32,
            st.integers(1, 400),
            elements=st.one_of(st.floats(-5, 5, width=32), st.sampled_from([0.0, np.nan, np.inf])),
        ),
        strip=st.integers(1, 50),
        scale=st.sampled_from(["auto", "minmax", "percentile", "percentile:90", "percentile:100", "abs"]),
    )
    def check(values, strip, scale):
        method = scale.partition(":")[0]
        percentile = float(scale.partition(":")[2] or 99.5)
        data = np.abs(values) if method == "abs" else values
        scan = RangeScan(values.size, percentile, absolute=method == "abs")
        for start in range(0, values.size, strip):
            scan.add(values[start : start + strip])
        assert choose_ends(scan, scale, None, None) == choose_ends(_ArrayStats(data), scale, None, None)

    check()


# ---------------------------------------------------------------------------
# Zero padding under a blur: a hint, once


def test_a_blur_with_zero_padding_on_photos_hints_at_replicate_once(tmp_path):
    import numpy as np

    run = run_cli(
        [
            "filter",
            SAMPLES / "camera.png",
            SAMPLES / "coffee.png",
            "-k",
            "gaussian:7",
            "-p",
            "same",
            "--outdir",
            tmp_path,
        ]
    )
    assert run.exit_code == 0, run
    hints = [line for line in run.stderr.splitlines() if line.startswith("hint:")]
    assert hints == [
        "hint: zero padding is black, so this gaussian-7 blur fades to dark along the borders; "
        "--pad-mode replicate (or reflect) keeps them as bright as the image"
    ]
    # the frame it warns about is real: the top row is darker than with replicate padding
    zeros = _png(tmp_path / "camera-gaussian-7.png").astype(float)
    run = run_cli(
        [
            "filter",
            SAMPLES / "camera.png",
            "-k",
            "gaussian:7",
            "-p",
            "same",
            "--pad-mode",
            "replicate",
            "-o",
            tmp_path / "r.png",
        ]
    )
    assert run.exit_code == 0 and "hint:" not in run.stderr, run
    replicated = _png(tmp_path / "r.png").astype(float)
    assert zeros[0].mean() < 0.8 * replicated[0].mean() and np.array_equal(
        zeros[100:-100, 100:-100], replicated[100:-100, 100:-100]
    )


@pytest.mark.parametrize(
    "args",
    [
        [SAMPLES / "random.npy", "-k", "gaussian:7", "-p", "same"],  # a raw array: zeros may be meant
        [SAMPLES / "camera.png", "-k", "vertical", "-p", "same"],  # not a smoothing kernel
        [SAMPLES / "camera.png", "-k", "gaussian:7"],  # no padding
        [SAMPLES / "camera.png", "-k", "blur", "-p", "1", "--pad-mode", "reflect"],
    ],
)
def test_no_padding_hint_where_zeros_do_no_harm(tmp_path, args):
    run = run_cli(["filter", *args, "-o", tmp_path / ("out.npy" if str(args[0]).endswith(".npy") else "out.png")])
    assert run.exit_code == 0 and "hint:" not in run.stderr, run


# ---------------------------------------------------------------------------
# learn on a PNG pair, and the default learning rate on a photo


def test_learn_on_a_png_target_says_it_was_stretched_and_how_to_avoid_it(tmp_path):
    import json

    png, raw = tmp_path / "t.png", tmp_path / "t.npy"
    for target in (png, raw):
        assert run_cli(["filter", SAMPLES / "edges.txt", "-k", "diff-x", "-o", target, "-q"]).exit_code == 0
    run = run_cli(["learn", SAMPLES / "edges.txt", png, "--solver", "lstsq", "--json"])
    assert run.exit_code == 0, run
    learned = json.loads(run.stdout)["kernel"]
    assert abs(learned[0][0] - 1) > 0.1  # the stretched target does not give 1 -1 back
    run = run_cli(["learn", SAMPLES / "edges.txt", png, "--solver", "lstsq"])
    note = [line for line in run.stderr.splitlines() if line.startswith("note: TARGET")]
    assert (
        len(note) == 1 and "span exactly 0..255" in note[0] and "-o target.npy" in note[0] and "--scale clip" in note[0]
    )
    run = run_cli(["learn", SAMPLES / "edges.txt", raw, "--solver", "lstsq", "--json"])
    assert run.exit_code == 0 and "note: TARGET" not in run.stderr, run
    assert [[round(v, 9) for v in row] for row in json.loads(run.stdout)["kernel"]] == [[1.0, -1.0]]


def test_the_default_learning_rate_is_lowered_on_a_photo_and_a_given_one_is_refused(tmp_path):
    import json

    target = tmp_path / "blur.npy"
    assert run_cli(["filter", SAMPLES / "camera.png", "-k", "blur", "-o", target, "-q"]).exit_code == 0
    run = run_cli(["learn", SAMPLES / "camera.png", target, "--size", "3", "--seed", "0", "--json"])
    assert run.exit_code == 0, run
    record = json.loads(run.stdout)
    assert record["lr"] < 1e-4 and record["history"][-1] < record["history"][0] / 2  # converging, not diverging
    assert record["warnings"][0].startswith("note: the default --lr 0.03 would diverge on this input")
    assert f"using --lr {record['lr']:.2g}" in record["warnings"][0]
    assert_error(
        run_cli(["learn", SAMPLES / "camera.png", target, "--size", "3", "--lr", "0.03"]), 2, "above the stable limit"
    )
