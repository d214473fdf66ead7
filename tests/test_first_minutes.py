"""What a newcomer trips over (issue 18), the parts fixed so far, tried through the CLI as a user meets them."""

from __future__ import annotations

from pathlib import Path

from conftest import assert_error, run_cli

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_a_kernel_as_a_nested_list():
    run = run_cli(["filter", SAMPLES / "x.txt", "-k", "[[0,1],[2,3]]", "-o", "-"])
    assert run.exit_code == 0 and run.stdout == "19 25\n37 43\n", run
    assert_error(
        run_cli(["filter", SAMPLES / "x.txt", "-k", "[[0,1],[2,3]", "-o", "-"]), 2, "write it as [[0, 1], [2, 3]]"
    )


def test_an_unknown_kernel_shows_the_forms_that_work():
    assert_error(
        run_cli(["filter", SAMPLES / "x.txt", "-k", "zzqq", "-o", "-"]),
        2,
        "rows as '0 1; 2 3', a nested list [[0, 1], [2, 3]], an ImageMagick string '2x2: 0,1,2,3', or a kernel file",
    )


def test_pool_takes_k_for_its_size_as_filter_does():
    short = run_cli(["pool", SAMPLES / "x.txt", "-k", "2", "-s", "1", "-o", "-"])
    long = run_cli(["pool", SAMPLES / "x.txt", "--size", "2", "-s", "1", "-o", "-"])
    assert short.exit_code == 0 and short.stdout == long.stdout == "4 5\n7 8\n", short


def test_a_ragged_grid_names_each_line_once(tmp_path):
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("1 2\n3\n")
    assert_error(
        run_cli(["filter", ragged, "-k", "1", "-o", "-"]), 1, "row 2 (line 2) has 1 values but row 1 (line 1) has 2"
    )
    inline = run_cli(["filter", SAMPLES / "x.txt", "-k", "1 2; 3", "-o", "-"])
    assert_error(inline, 2, "row 2 has 1 values but row 1 has 2")
    assert "(line 1)" not in inline.stderr


def test_kernel_sums_read_as_people_write_them():
    for spec in ("gaussian:5", "gaussian:7:1.3", "blur:7"):
        run = run_cli(["kernels", "show", spec])
        assert run.exit_code == 0 and ", sum 1," in run.stderr, run


def test_stdin_in_and_no_output_name_writes_to_stdout(tmp_path, monkeypatch):
    """`cat x.png | convcli filter - -k vertical > out.png` writes out.png, and no stray stdin-vertical.png."""
    import io

    from PIL import Image

    monkeypatch.chdir(tmp_path)
    run = run_cli(["filter", "-", "-k", "vertical"], input=(SAMPLES / "camera.png").read_bytes())
    assert run.exit_code == 0 and run.stdout_bytes.startswith(b"\x89PNG"), run
    with Image.open(io.BytesIO(run.stdout_bytes)) as image:
        assert image.size == (510, 510)
    assert "-> stdout" in run.stderr and not list(tmp_path.iterdir())
    text = run_cli(["pool", "-", "-k", "2"], input="0 1\n2 3\n")
    assert text.exit_code == 0 and text.stdout == "3\n", text
    # two outputs cannot share stdout: they get their names, as before
    two = run_cli(["filter", "-", "-k", "vertical", "-k", "horizontal"], input=(SAMPLES / "camera.png").read_bytes())
    assert two.exit_code == 0 and sorted(p.name for p in tmp_path.iterdir()) == [
        "stdin-horizontal.png",
        "stdin-vertical.png",
    ]
    as_json = run_cli(["filter", "-", "-k", "1", "--json"], input="0 1\n2 3\n")
    assert as_json.exit_code == 0 and as_json.stdout.startswith("{"), as_json


def test_stdin_to_a_terminal_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setattr("convcli.cli.streams.stdout_is_terminal", lambda: True)
    run = run_cli(["filter", "-", "-k", "vertical"], input=(SAMPLES / "camera.png").read_bytes())
    assert_error(run, 2, "refusing to write PNG bytes to a terminal")
