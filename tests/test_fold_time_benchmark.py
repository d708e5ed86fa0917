"""``benchmarks/fold_time.py`` runs: the nets' input shapes, a timed fit and its table (a few clips, one epoch)."""

import pytest

from conftest import load_benchmark  # pytest puts tests/ on the path (no __init__.py)


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("fold_time")


def test_the_input_shape_is_the_one_a_pipeline_gives_the_net(bench):
    frames = 1 + 8000 // 512  # one second at 8 kHz, hop 512, centred frames
    assert bench.input_shape("cnn", 1.0, 8000) == (2, 60, frames)  # log-mel and its delta, 60 bands
    assert bench.input_shape("cnn6", 1.0, 8000) == (2, 64, frames)
    assert bench.input_shape("lstm", 1.0, 8000) == (frames, 120)  # time first: 40 MFCCs and 2 deltas a frame


def test_a_fold_is_timed_for_the_epochs_asked(bench, one_torch_thread):
    row = bench.time_fold("lstm", (16, 120), n_clips=20, max_epochs=2)
    assert row["epochs"] == 2
    assert row["fit_wall_s"] > 0 and row["fit_cpu_s"] > 0 and row["predict_wall_s"] > 0


def test_the_table_estimates_a_shortened_fold(bench, capsys, one_torch_thread):
    assert bench.main(["--estimators", "cnn", "lstm", "--clips", "10", "--seconds", "1", "--sr", "8000",
                       "--threads", "1", "--max-epochs", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| cnn") or
            line.startswith("| lstm")]
    assert len(rows) == 2
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[2] == "1" and "(for 60 epochs, estimated)" in cells[6] and cells[7] in {"yes", "no"}
