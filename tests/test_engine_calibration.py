"""The per-machine FFT tile table (issue 19, item 2): off in tests and docs, probed once, cached, harmless to results."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from convcli.engine import calibration, correlate2d, plan_correlation
from convcli.engine.fft import _tile, estimate_ns, fast_length
from convcli.shapes import conv_geometry


@pytest.fixture
def calibrated(monkeypatch, tmp_path):
    """Calibration switched on, its cache in a temporary folder, nothing held in this process."""
    monkeypatch.delenv(calibration.ENV_OFF, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(calibration, "probe_opencv", fake_opencv({"box": {3: 0.5, 15: 0.9}}, {"box": {3: 0.8}}))
    monkeypatch.setattr(calibration, "probe_threads", lambda: 1.5)
    monkeypatch.setattr(calibration, "probe_taps", lambda: {"direct": 0.5, "separable blas": 0.8})
    calibration.forget()
    yield tmp_path
    calibration.forget()


def fake_opencv(small: dict, large: dict):  # type: ignore[no-untyped-def]
    """A stand-in for probe_opencv: ``small`` on the cached image, ``large`` on the large one."""

    def probe(rounds: int = 4, size: int = calibration.OPENCV_SMALL_SIZE, points: dict | None = None) -> dict:
        return dict(small if size == calibration.OPENCV_SMALL_SIZE else large)

    return probe


def fake_probe(table: dict[int, float], calls: list):
    def probe() -> dict[int, float]:
        calls.append(1)
        return dict(table)

    return probe


def test_the_suite_runs_with_the_fixed_model():
    assert not calibration.enabled() and calibration.fft_table(1 << 30) == {} and calibration.token() == "off"
    # The fixed model's tiles: L log L per axis, 1152 at most.
    assert _tile(4096, 15) == _tile(4096, 15, {}) and _tile(4096, 15)[1] <= 1152


def test_small_work_never_probes_and_large_work_probes_once_then_reads_the_cache(calibrated, monkeypatch):
    calls: list = []
    table = {128: 9.0, 256: 8.0, 512: 11.0, 1152: 15.0}
    monkeypatch.setattr(calibration, "probe", fake_probe(table, calls))
    assert calibration.fft_table(1000) == {} and not calls
    assert not list(calibrated.rglob("*.json"))
    assert calibration.fft_table(calibration.PROBE_MIN_OUTPUTS) == table and len(calls) == 1
    assert calibration.fft_table(1 << 30) == table and len(calls) == 1  # held in the process
    written = json.loads(calibration.cache_path().read_text())
    assert written["key"] == calibration.machine_key() and {int(k) for k in written["ns_per_element"]} == set(table)
    calibration.forget()  # a new process: small work neither reads nor probes; large work reads the file
    assert calibration.fft_table(10) == {} and calibration.token() is None
    assert calibration.fft_table(1 << 30) == table and len(calls) == 1
    assert calibration.fft_table(10) == table  # held now, for small work too
    assert calibration.token() == (
        tuple(sorted(table.items())),
        ((("box", ((3, 0.5), (15, 0.9))),), (("box", ((3, 0.8),)),)),
        1.5,
        (("direct", 0.5), ("separable blas", 0.8)),
    )
    assert calibration.tap_scales() == {"direct": 0.5, "separable blas": 0.8} == written["tap_scales"]
    assert calibration.opencv_costs() == {"box": {3: 0.5, 15: 0.9}} and written["opencv"] == {
        "box": {"3": 0.5, "15": 0.9}
    }
    # past the caches: what the large image added (0.3 per output, flat beyond its one point) is added in full
    assert written["opencv_large"] == {"box": {"3": 0.8}}
    assert calibration.opencv_costs(4096 * 4096) == {"box": {3: 0.8, 15: 1.2}}


def test_the_cache_is_per_machine_key(calibrated):
    assert calibration.cache_path("Xeon; numpy=2") != calibration.cache_path("EPYC; numpy=2")
    assert calibration.cache_path().parent == calibrated / "convcli"
    key = calibration.machine_key()
    assert "numpy=" in key and "scipy=" in key and "convcli=" in key


def test_a_probe_under_way_elsewhere_is_not_repeated(calibrated, monkeypatch):
    calls: list = []
    monkeypatch.setattr(calibration, "probe", fake_probe({256: 1.0}, calls))
    lock = calibration.cache_path().with_suffix(".lock")
    lock.parent.mkdir(parents=True)
    lock.touch()
    assert calibration.fft_table(1 << 30) == {} and not calls
    assert calibration.fft_table(1 << 30) == {}  # the fixed model for the rest of this process


def test_a_damaged_cache_is_probed_again(calibrated, monkeypatch):
    calls: list = []
    monkeypatch.setattr(calibration, "probe", fake_probe({256: 2.0}, calls))
    path = calibration.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert calibration.fft_table(1 << 30) == {256: 2.0} and len(calls) == 1


def test_the_real_probe_measures_every_length():
    table = calibration.probe((128, 256), rounds=1)
    assert set(table) == {128, 256} and all(0 < value < 1e4 for value in table.values())


@pytest.mark.parametrize(
    "table",
    [{128: 1.0, 256: 50.0, 1152: 60.0}, {128: 60.0, 256: 50.0, 512: 40.0, 1152: 1.0}, {384: 1.0, 512: 9.0}],
)
def test_the_table_picks_the_cheapest_tile_and_the_numbers_do_not_change(table):
    tile, length = _tile(1000, 15, table)
    assert length in table or length == fast_length(1000 + 14)
    assert tile == min(1000, length - 14)
    # The cheapest here by its own measure: tiles x L x sqrt(cost), over the probed lengths.
    cheapest = min((n for n in table if n >= 15), key=lambda n: -(-1000 // (n - 14)) * n * table[n] ** 0.5)
    assert length == cheapest or length == fast_length(1014)


@pytest.mark.parametrize(
    "table", [{128: 1.0, 256: 50.0, 1152: 60.0}, {128: 60.0, 1152: 1.0}, {256: 3.0, 384: 1.0, 512: 9.0}]
)
def test_fft_results_are_the_same_whatever_the_tiles(table, monkeypatch):
    x = np.random.default_rng(2).uniform(-1, 1, (700, 650)).astype(np.float32)
    kernel = np.random.default_rng(3).uniform(-1, 1, (15, 15))
    fixed = correlate2d(x, kernel, padding=7, method="fft", backend="numpy")
    monkeypatch.setattr(calibration, "fft_table", lambda outputs=0: table)
    tiled = correlate2d(x, kernel, padding=7, method="fft", backend="numpy")
    want = ndimage.correlate(x.astype(np.float64), kernel, mode="constant")
    scale = np.abs(kernel).sum()  # |x| <= 1: every output is at most this
    for got in (fixed, tiled):
        assert np.abs(got - want).max() <= 1e-5 * scale
    assert np.abs(tiled - fixed).max() <= 2e-6 * scale


def test_the_plan_follows_the_measured_fft_cost(monkeypatch):
    kernel = np.random.default_rng(4).uniform(-1, 1, (7, 7))
    geometry = conv_geometry((2048, 2048), (7, 7), (1, 1), (3, 3), (1, 1))
    assert estimate_ns(geometry, {}) is None
    cheap, dear = {256: 0.5, 512: 0.5}, {256: 500.0, 512: 500.0}
    assert estimate_ns(geometry, cheap) < estimate_ns(geometry, dear)
    picks = {}
    for name, table in (("cheap", cheap), ("dear", dear)):
        monkeypatch.setattr(calibration, "fft_table", lambda outputs=0, table=table: table)
        monkeypatch.setattr(calibration, "token", lambda table=table: tuple(sorted(table.items())))
        picks[name] = plan_correlation((2048, 2048), kernel, padding=3, backend="numpy").method
    assert picks == {"cheap": "fft", "dear": "direct"}
    x = np.random.default_rng(5).uniform(-1, 1, (300, 280)).astype(np.float32)
    results = [correlate2d(x, kernel, padding=3, method=m, backend="numpy") for m in ("fft", "direct")]
    assert np.abs(results[0] - results[1]).max() <= 1e-5 * np.abs(kernel).sum()


@pytest.mark.parametrize("table", [{128: 1.0, 256: 2.0, 512: 9.0}, {256: 1.0, 1152: 5.0}])
def test_streamed_fft_strips_stay_identical_to_the_in_memory_result_with_a_table(table, monkeypatch):
    # The streamed path cuts blocks of whole FFT tiles by _tile: with a table, its tiles must be the engine's.
    from convcli.api.arrays import as_kernels, filter_array
    from convcli.api.arrays import geometry as make_geometry
    from convcli.api.settings import FilterSettings
    from test_stream import _streamed_rows

    monkeypatch.setattr(calibration, "fft_table", lambda outputs=0: table)
    image = np.random.default_rng(8).random((700, 300)).astype(np.float32)
    kernels = as_kernels([np.random.default_rng(9).random((15, 15))])
    settings = FilterSettings(make_geometry(padding="same", pad_mode="reflect"), method="fft")
    monkeypatch.setenv("CONVCLI_NO_OPENCV", "1")
    expected = filter_array(image, kernels, settings).array
    assert _tile(700, 15)[1] in table  # more than one tile down the image
    for rows in (64, 250):
        np.testing.assert_array_equal(_streamed_rows(image, kernels, settings, rows), expected)


def test_the_fft_estimate_shares_its_tiles_by_the_measured_speedup():
    g = conv_geometry((2048, 2048), (15, 15), (1, 1), (7, 7), (1, 1))
    table = {128: 9.0, 256: 8.0, 512: 11.0}
    assert estimate_ns(g, table, 1.6) == pytest.approx(estimate_ns(g, table) / 1.6)
    assert estimate_ns(g, table, 0.5) == estimate_ns(g, table)  # never dearer than one thread


def test_the_opencv_probe_measures_each_function_at_each_size():
    from convcli.engine import opencv_available

    if not opencv_available():
        assert calibration.probe_opencv() == {}
        return
    costs = calibration.probe_opencv(rounds=1)
    assert {m: sorted(points) for m, points in costs.items()} == {
        m: list(p) for m, p in calibration.OPENCV_POINTS.items()
    }
    assert all(0 < ns < 500 for points in costs.values() for ns in points.values())
    large = calibration.probe_opencv(rounds=1, size=256, points=calibration.OPENCV_LARGE_POINTS)
    assert {m: sorted(points) for m, points in large.items()} == {
        m: list(p) for m, p in calibration.OPENCV_LARGE_POINTS.items()
    }


def plan_with(monkeypatch, costs: dict, kernel: np.ndarray, size: int = 2048):  # type: ignore[no-untyped-def]
    """The plan of a 'same' correlation with OpenCV's measured costs set to ``costs``."""
    monkeypatch.setattr(calibration, "opencv_costs", lambda outputs=0, c=costs: c)
    monkeypatch.setattr(calibration, "token", lambda c=costs: repr(sorted(c.items())))
    return plan_correlation((size, size), kernel, padding=kernel.shape[0] // 2)


#: Measured here (an AMD EPYC, OpenCV 5, quiet): boxFilter is cheap at 3x3 and flat from 7x7, sepFilter2D grows.
EPYC = {
    "box": {3: 0.77, 7: 2.3, 15: 2.5, 31: 2.3},
    "separable": {3: 0.6, 7: 1.1, 15: 2.4, 31: 3.9},
    "direct": {9: 0.7, 25: 1.6, 49: 3.3, 81: 5.4, 121: 8.1},
    "fft": {225: 16.0},
}


@pytest.mark.parametrize(
    ("side", "expected"),
    [(3, "separable"), (5, "separable"), (7, "separable"), (15, "separable"), (21, "box"), (31, "box"), (45, "box")],
)
def test_measured_costs_pick_the_function_cheapest_at_that_size(monkeypatch, side, expected):
    # boxFilter's cost is not linear in the side here (0.77 at 3, 2.3 from 7): a factor on a model line could
    # not rank it right at 3, 15 and 31 at once; the measured points can (and interpolate between them).
    from convcli.engine import opencv_available

    if not opencv_available():
        pytest.skip("needs OpenCV")
    plan = plan_with(monkeypatch, EPYC, np.full((side, side), 1 / side**2))
    assert (plan.method, plan.backend) == (expected, "opencv"), plan.reason


def test_measured_costs_past_the_caches_are_not_charged_the_models_extra_again(monkeypatch):
    # The measured costs of a large image include its memory traffic (calibration.blend). The fixed model's own
    # extras for large images (boxFilter 0.45 ns per output, filter2D 0.3) would turn this box 3x3 to filter2D.
    from convcli.engine import opencv_available

    if not opencv_available():
        pytest.skip("needs OpenCV")
    measured = {"box": {3: 1.0, 31: 2.0}, "direct": {9: 1.05, 121: 9.0}, "separable": {3: 3.0, 31: 9.0}}
    plan = plan_with(monkeypatch, measured, np.full((3, 3), 1 / 9), size=4096)
    assert (plan.method, plan.backend) == ("box", "opencv"), plan.reason


def test_measured_costs_steer_the_choice_and_the_numbers_agree(monkeypatch):
    from convcli.engine import opencv_available

    if not opencv_available():
        pytest.skip("needs OpenCV")
    box = np.full((9, 9), 1 / 81)
    cheap_box = {"box": {3: 0.1, 31: 0.1}, "separable": {3: 5.0, 31: 9.0}, "direct": {9: 9.0, 121: 90.0}}
    dear_box = {"box": {3: 9.0, 31: 9.0}, "separable": {3: 0.2, 31: 0.4}, "direct": {9: 9.0, 121: 90.0}}
    assert plan_with(monkeypatch, cheap_box, box).method == "box"
    assert plan_with(monkeypatch, dear_box, box).method == "separable"
    x = np.random.default_rng(6).random((400, 300), dtype=np.float32)
    by_box = correlate2d(x, box, padding=4, method="box", backend="opencv")
    by_separable = correlate2d(x, box, padding=4, method="separable", backend="opencv")
    assert np.abs(by_box - by_separable).max() <= 1e-6


def test_a_disturbed_probe_is_not_cached_and_retried_an_hour_later(calibrated, monkeypatch):
    calls: list = []
    monkeypatch.setattr(calibration, "probe", fake_probe({128: 7.7, 256: 57.0, 384: 123.0}, calls))
    assert calibration.fft_table(1 << 30) == {} and len(calls) == 1
    assert "rejected_at" in json.loads(calibration.cache_path().read_text())
    calibration.forget()  # the next process keeps the fixed model for an hour, without probing
    assert calibration.fft_table(1 << 30) == {} and len(calls) == 1
    calibration.forget()  # an hour later it probes again
    monkeypatch.setattr(calibration, "RETRY_SECONDS", 0.0)
    monkeypatch.setattr(calibration, "probe", fake_probe({128: 8.0, 256: 8.1, 1152: 13.8}, calls))
    monkeypatch.setattr(calibration, "probe_opencv", fake_opencv({"box": {3: 0.7}, "direct": {9: 900.0}}, {}))
    assert calibration.fft_table(1 << 30) == {128: 8.0, 256: 8.1, 1152: 13.8} and len(calls) == 2
    assert calibration.opencv_costs() == {}  # an implausible cost: OpenCV keeps the fixed model


def test_an_implausible_cache_file_is_probed_again(calibrated, monkeypatch):
    calls: list = []
    monkeypatch.setattr(calibration, "probe", fake_probe({256: 8.0, 512: 9.0}, calls))
    path = calibration.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"key": "k", "ns_per_element": {"128": 7.7, "384": 123.0}, "opencv": {}}))
    assert calibration.fft_table(1 << 30) == {256: 8.0, 512: 9.0} and len(calls) == 1


def test_a_job_of_few_images_charges_opencv_its_import(monkeypatch):
    # A one-shot run of a 2 MP image would spend more importing OpenCV (about 40 ms) than OpenCV saves on a 3x3;
    # a job of a thousand images shares one import. The charge is the job's, never the process's state.
    from convcli.engine import opencv_available

    if not opencv_available():
        pytest.skip("needs OpenCV")
    kernel = np.random.default_rng(8).uniform(-1, 1, (3, 3))
    size = (1200, 1600)
    free = plan_correlation(size, kernel, padding=1)
    if free.backend != "opencv":
        pytest.skip(f"this machine's model keeps a 3x3 at 2 MP on NumPy anyway: {free.reason}")
    one_shot = plan_correlation(size, kernel, padding=1, job_images=1)
    assert one_shot.backend == "numpy" and "40 ms for importing it" in one_shot.reason
    shared = plan_correlation(size, kernel, padding=1, job_images=1000)
    assert shared.backend == "opencv" and "0.04 ms for importing it" in shared.reason
    # forced methods are charged too; a forced backend is not (it asks for OpenCV whatever the cost)
    assert plan_correlation(size, kernel, padding=1, job_images=1, method="direct").backend == "numpy"
    assert plan_correlation(size, kernel, padding=1, job_images=1, backend="opencv").backend == "opencv"


def test_the_tap_probe_times_every_variant_it_names():
    from convcli.engine.tap_probe import PROBE_SHAPE, VARIANTS, probe_cases, probe_taps, variant_of

    for shape in (PROBE_SHAPE, (96, 160)):  # each case runs the variant it is named for
        assert [variant_of(*case[1:]) for case in probe_cases(shape)] == list(VARIANTS)
    scales = probe_taps(rounds=1, shape=(96, 160))
    assert sorted(scales) == sorted(VARIANTS) and all(0 < value < 1e3 for value in scales.values())


def test_the_plan_scales_both_tap_methods_by_one_measured_factor(monkeypatch):
    # A random 9x9 at 2048x2048: the fixed model estimates direct tap by tap at 138 ms and the FFT at 97; on a CPU
    # where the taps ran at 0.4 of the estimate, the direct method is the cheaper one (the FFT's table kept off).
    from convcli.engine.tap_probe import variant_of

    kernel = np.random.default_rng(4).uniform(-1, 1, (9, 9))
    gaussian = np.outer(*(2 * [np.exp(-0.5 * ((np.arange(31) - 15) / 5.0) ** 2)]))
    picks = {}
    for scales in ({}, {"direct": 0.2, "separable": 0.8}, {"direct": 2.0, "separable": 0.5}):
        monkeypatch.setattr(calibration, "tap_scales", lambda outputs=0, s=scales: s)
        monkeypatch.setattr(calibration, "token", lambda s=scales: repr(sorted(s.items())))
        plan = plan_correlation((2048, 2048), kernel, padding=4, backend="numpy")
        picks[tuple(scales.values())] = plan.method
        assert calibration.tap_scale() == pytest.approx(0.4 if scales == {"direct": 0.2, "separable": 0.8} else 1.0)
    # one factor for both methods, the geometric mean of the variants' (0.4, then 1.0)
    assert picks == {(): "fft", (0.2, 0.8): "direct", (2.0, 0.5): "fft"}, picks
    g = conv_geometry((2048, 2048), (31, 31), (1, 1), (15, 15), (1, 1))
    from convcli.engine.plan import _analysis

    terms = _analysis(gaussian.tobytes(), gaussian.shape)
    assert variant_of("separable", gaussian, terms, g) == "separable blas"
    strided = conv_geometry((2048, 2048), (31, 31), (2, 2), (15, 15), (1, 1))
    assert variant_of("separable", gaussian, terms, strided) == "separable strided"
    assert variant_of("fft", gaussian, terms, g) == ""


def test_implausible_tap_scales_keep_the_fixed_model_for_the_taps(calibrated, monkeypatch):
    monkeypatch.setattr(calibration, "probe", fake_probe({256: 8.0, 512: 9.0}, []))
    monkeypatch.setattr(calibration, "probe_taps", lambda: {"direct": 0.5, "separable": 40.0})
    assert calibration.fft_table(1 << 30) == {256: 8.0, 512: 9.0}  # the FFT's table is kept
    assert calibration.tap_scales() == {} and json.loads(calibration.cache_path().read_text())["tap_scales"] == {}
    calibration.forget()  # an edited file is checked again on reading
    path = calibration.cache_path()
    record = json.loads(path.read_text())
    record["tap_scales"] = {"direct": 0.01}
    path.write_text(json.dumps(record))
    assert calibration.fft_table(1 << 30) == {256: 8.0, 512: 9.0} and calibration.tap_scales() == {}


def test_serial_runs_every_share_on_the_calling_thread():
    import threading

    from convcli.parallel import run_parallel, serial

    seen: set = set()
    tasks = [(index,) for index in range(8)]
    with serial():
        run_parallel(tasks, lambda index: seen.add(threading.get_ident()))
    assert seen == {threading.get_ident()}
    run_parallel(tasks, lambda index: seen.add(threading.get_ident()))
    from convcli.parallel import pool_limit, workers

    threaded = workers() > 1 and (pool_limit() or 2) > 1
    assert (len(seen) > 1) == threaded
