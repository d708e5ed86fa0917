"""``benchmarks/gpu.py`` runs, on a small demo data set and few samples (CPU rows; CUDA rows where present)."""

import pandas as pd
import pytest
import torch

from conftest import load_benchmark  # pytest puts tests/ on the path (no __init__.py)


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("gpu")


def test_throughput_is_measured_per_setting(bench, one_torch_thread):
    for precision in ("32", "bf16-mixed"):
        speed = bench.throughput("piczak", (2, 60, 41), "cpu", precision, n_samples=48, threads=1)
        assert set(speed) == {"train_sps", "train_cpu_per_1k", "infer_sps", "infer_cpu_per_1k"}
        assert all(value > 0 for value in speed.values()), speed


def test_cuda_settings_are_skipped_with_the_reason_without_a_gpu(bench):
    if torch.cuda.is_available():
        assert bench.unavailable("cuda", "32") is None
    else:
        assert "no CUDA device" in bench.unavailable("cuda", "16-mixed")
    assert bench.unavailable("cpu", "bf16-mixed") is None


def test_the_benchmark_runs_on_a_small_demo(bench, tmp_path, capsys, one_torch_thread):
    from featurestore.datasets import demo

    # 80 clips: a training fold holds 8 per class, enough for the validation split's 5 stratified parts
    demo.generate(tmp_path / "cache" / "datasets" / "demo", clips_per_class=10)
    out = tmp_path / "out"
    assert bench.main(["--cache", str(tmp_path / "cache"), "--nets", "cnn", "--epochs", "1", "--fold", "2",
                       "--n-samples", "32", "--threads", "1", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "gpu.csv")
    cpu = table[table["device"] == "cpu"]
    assert cpu["precision"].tolist() == ["32", "bf16-mixed"] and (cpu["epochs_run"] == 1).all()
    assert cpu["accuracy"].between(0, 1).all() and (cpu["train_sps"] > 0).all()
    if not torch.cuda.is_available():
        assert printed.count("skipped: no CUDA device") == 3 and set(table["device"]) == {"cpu"}
    assert "| cnn | cpu | bf16-mixed |" in (out / "gpu.md").read_text()
