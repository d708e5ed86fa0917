"""Pretrained embeddings (``panns``, ``ast``) from checkpoints that the tests write.

The CNN14 checkpoints are built here from the published key layout, listed by hand below (not from
the toolkit's network), with random weights; the AST folders are written by ``transformers``'
``save_pretrained`` from a tiny random ``ASTConfig``. Nothing is downloaded.
"""

import hashlib
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor

import librosa
import numpy as np
import pytest
import torch

from featurestore import extract, load_dataset
from featurestore import features
from featurestore.audio import resample
from featurestore.errors import ParameterError
from featurestore.features import _cnn14, panns
from featurestore.specs import FeatureRequest

# transformers warns that the published 128 mel bands on a 512-point FFT leave one filter empty
pytestmark = pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values:UserWarning")

SR = 8000
#: The 8 kHz variant's settings (Cnn14_8k): n_fft 256, hop 80, 64 mels from 50 to 4000 Hz.
SETTINGS_8K = {"sample_rate": 8000, "hop_length": 80, "fmin": 50.0, "fmax": 4000.0}
TINY_WIDTHS = (2, 4, 4, 8, 8, 16)


def published_cnn14_keys():
    """The keys of the published Cnn14 state dict (audioset_tagging_cnn, pytorch/models.py)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight",
            "logmel_extractor.melW", *(f"bn0.{p}" for p in bn)]
    for i in range(1, 7):
        keys += [f"conv_block{i}.conv1.weight", f"conv_block{i}.conv2.weight"]
        keys += [f"conv_block{i}.{b}.{p}" for b in ("bn1", "bn2") for p in bn]
    return keys + ["fc1.weight", "fc1.bias", "fc_audioset.weight", "fc_audioset.bias"]


def official_state_dict(*, sr=8000, n_fft=256, n_mels=64, fmin=50.0, fmax=4000.0, widths=TINY_WIDTHS,
                        embedding_size=16, n_classes=5, seed=0):
    """A CNN14 state dict in the published layout: the published front end, random weights elsewhere."""
    g = torch.Generator().manual_seed(seed)
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    dft = np.exp(-2j * np.pi * np.outer(np.arange(n_fft // 2 + 1), np.arange(n_fft)) / n_fft) * window
    state = {
        "spectrogram_extractor.stft.conv_real.weight": torch.tensor(dft.real, dtype=torch.float32)[:, None],
        "spectrogram_extractor.stft.conv_imag.weight": torch.tensor(dft.imag, dtype=torch.float32)[:, None],
        "logmel_extractor.melW": torch.tensor(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                                                  fmax=fmax).T),
    }

    def batch_norm(prefix, n):
        state.update({f"{prefix}.weight": 1 + 0.1 * torch.randn(n, generator=g),
                      f"{prefix}.bias": 0.1 * torch.randn(n, generator=g),
                      f"{prefix}.running_mean": torch.randn(n, generator=g),
                      f"{prefix}.running_var": 0.5 + torch.rand(n, generator=g),
                      f"{prefix}.num_batches_tracked": torch.tensor(1000)})

    batch_norm("bn0", n_mels)
    channels = (1, *widths)
    for i in range(6):
        c_in, c_out = channels[i], channels[i + 1]
        block = f"conv_block{i + 1}"
        state[f"{block}.conv1.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * (2 / (9 * c_in)) ** 0.5
        state[f"{block}.conv2.weight"] = torch.randn(c_out, c_out, 3, 3, generator=g) * (2 / (9 * c_out)) ** 0.5
        batch_norm(f"{block}.bn1", c_out)
        batch_norm(f"{block}.bn2", c_out)
    state["fc1.weight"] = torch.randn(embedding_size, widths[-1], generator=g) / widths[-1] ** 0.5
    state["fc1.bias"] = 0.1 * torch.randn(embedding_size, generator=g)
    state["fc_audioset.weight"] = torch.randn(n_classes, embedding_size, generator=g)
    state["fc_audioset.bias"] = torch.zeros(n_classes)
    assert set(state) == set(published_cnn14_keys())
    return state


@pytest.fixture(scope="module")
def cnn14_file(tmp_path_factory):
    """A tiny Cnn14_8k-layout checkpoint, saved as the published files are: ``{"model": state_dict}``."""
    path = tmp_path_factory.mktemp("panns") / "Cnn14_8k_tiny.pth"
    torch.save({"model": official_state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def ast_folder(tmp_path_factory):
    """A tiny random ASTForAudioClassification in the Hugging Face layout (as published)."""
    transformers = pytest.importorskip("transformers")
    transformers.utils.logging.disable_progress_bar()
    path = tmp_path_factory.mktemp("ast") / "ast-tiny"
    config = transformers.ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=24, max_length=64, num_mel_bins=128, num_labels=5)
    torch.manual_seed(0)
    transformers.ASTForAudioClassification(config).save_pretrained(path)
    with warnings.catch_warnings():  # the published 128 bands on 257 bins leave one filter empty
        warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
        transformers.ASTFeatureExtractor(max_length=64).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clips():
    """Five 1 s clips at 8 kHz: noisy tones of different pitches and levels, float32 (5, 8000)."""
    rng = np.random.default_rng(3)
    t = np.arange(SR) / SR
    f0 = np.array([200.0, 400.0, 800.0, 1600.0, 3000.0])[:, None]
    level = np.array([1.0, 0.3, 0.1, 0.03, 0.5])[:, None]
    return (level * (np.sin(2 * np.pi * f0 * t) + 0.1 * rng.standard_normal((5, SR)))).astype(np.float32)


@pytest.fixture(scope="module")
def kind_params(cnn14_file, ast_folder):
    return {"panns": {"checkpoint": str(cnn14_file), **SETTINGS_8K}, "ast": {"checkpoint": str(ast_folder)}}


# --------------------------------------------------------------------------- the published layouts
def test_the_network_has_the_published_cnn14_layout_and_shapes():
    with torch.device("meta"):  # the published sizes (80 M parameters) without allocating them
        net = _cnn14.Cnn14()
    state = net.state_dict()
    assert list(state) == published_cnn14_keys()
    assert state["spectrogram_extractor.stft.conv_real.weight"].shape == (513, 1, 1024)
    assert state["logmel_extractor.melW"].shape == (513, 64)
    assert state["conv_block6.conv2.weight"].shape == (2048, 2048, 3, 3)
    assert state["fc1.weight"].shape == (2048, 2048) and state["fc_audioset.weight"].shape == (527, 2048)
    # the paper's 80.8 M trainable parameters; the front end (1.08 M) is frozen, as published
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 80_753_615


def test_a_checkpoint_in_the_published_layout_loads_without_missing_or_unexpected_keys(cnn14_file):
    state = torch.load(cnn14_file, weights_only=True)["model"]
    net = panns.network(cnn14_file, **SETTINGS_8K)
    loaded = net.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    assert net.fc1.out_features == 16 and not net.training


def test_a_bare_state_dict_loads_too(tmp_path, clips, kind_params):
    bare = tmp_path / "bare.pth"
    torch.save(official_state_dict(), bare)
    a = features.compute("panns", clips, sr=SR, **{**kind_params["panns"], "checkpoint": str(bare)})
    b = features.compute("panns", clips, sr=SR, **kind_params["panns"])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change, match", [
    (lambda s: s.pop("conv_block3.bn1.running_var"), r"missing keys \['conv_block3.bn1.running_var'\]"),
    (lambda s: s.update({"fc_extra.weight": torch.zeros(2)}), r"unexpected keys \['fc_extra.weight'\]"),
    (lambda s: s.update({"fc1.bias": torch.zeros(3)}), "does not fit CNN14"),
    (lambda s: s.pop("logmel_extractor.melW"), "not a PANNs CNN14 state dict: no 'logmel_extractor.melW'"),
])
def test_a_checkpoint_in_another_layout_is_an_error_naming_the_keys(tmp_path, change, match):
    state = official_state_dict()
    change(state)
    path = tmp_path / "other.pth"
    torch.save({"model": state}, path)
    with pytest.raises(ParameterError, match=match):
        panns.network(path, **SETTINGS_8K)


def test_settings_that_do_not_match_the_checkpoints_filterbank_are_an_error(cnn14_file):
    with pytest.raises(ParameterError, match="mel filterbank .* not the one of sample_rate=16000"):
        panns.network(cnn14_file, sample_rate=16000, hop_length=160, fmax=4000.0)
    with pytest.raises(ParameterError, match="fmax=5000.0"):
        panns.network(cnn14_file, sample_rate=8000, hop_length=80, fmax=5000.0)


def test_a_missing_or_foreign_checkpoint_is_an_error_naming_it(tmp_path, clips):
    with pytest.raises(ParameterError, match="checkpoint=None: give the path"):
        features.compute("panns", clips, sr=SR)
    with pytest.raises(ParameterError, match="nope.pth': no such file"):
        features.compute("panns", clips, sr=SR, checkpoint=str(tmp_path / "nope.pth"))
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ParameterError, match="notes.pth' is not a readable torch checkpoint"):
        features.compute("panns", clips, sr=SR, checkpoint=str(text))
    with pytest.raises(ParameterError, match="no such folder"):
        features.compute("ast", clips, sr=SR, checkpoint=str(tmp_path / "missing"))


# --------------------------------------------------------------------------- the input pipeline
def test_cnn14_front_end_is_librosas_log_mel_with_reflect_padding(cnn14_file, clips):
    net = panns.network(cnn14_file, **SETTINGS_8K)
    with torch.inference_mode():
        x = net.logmel_extractor(net.spectrogram_extractor(torch.from_numpy(clips[:2])))  # (2, 1, T, 64)
    for i in range(2):
        S = librosa.feature.melspectrogram(y=clips[i], sr=8000, n_fft=256, hop_length=80, center=True,
                                           pad_mode="reflect", power=2.0, n_mels=64, fmin=50.0, fmax=4000.0)
        expected = librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)
        np.testing.assert_allclose(x[i, 0].numpy().T, expected, atol=2e-3)  # dB; float32 conv vs FFT


def test_panns_embedding_is_fc1_of_the_resampled_clip(cnn14_file, clips, kind_params):
    """At 16 kHz a clip is resampled (soxr HQ) to the network's 8 kHz before the network sees it."""
    y16 = np.stack([resample(c, 8000, 16000) for c in clips])
    out = features.compute("panns", y16, sr=16000, **kind_params["panns"])
    net = panns.network(cnn14_file, **SETTINGS_8K)
    assert out.shape == (5, 16) and out.dtype == np.float32
    for i, clip in enumerate(y16):
        with torch.inference_mode():
            expected = net.embed(torch.from_numpy(resample(clip, 16000, 8000))[None])[0].numpy()
            logits = net(torch.from_numpy(resample(clip, 16000, 8000))[None])
        np.testing.assert_array_equal(out[i], expected)
        assert (out[i] >= 0).all()  # after fc1's ReLU
        # fc_audioset reads exactly this embedding
        np.testing.assert_allclose(logits[0].numpy(), net.fc_audioset.weight.detach().numpy() @ out[i]
                                   + net.fc_audioset.bias.detach().numpy(), rtol=1e-4, atol=1e-4)
    assert np.abs(out[0] - out[3]).max() > 1e-3  # different clips, different embeddings


def test_short_clips_are_padded_to_the_least_cnn14_can_pool(kind_params):
    short = np.zeros((2, 400), np.float32)  # 50 ms: 6 frames at 8 kHz
    short[1, 100] = 1.0
    out = features.compute("panns", short, sr=SR, **kind_params["panns"])
    assert out.shape == (2, 16) and np.isfinite(out).all()


def test_ast_embedding_is_the_pooled_output_of_the_published_pipeline(ast_folder, clips, kind_params):
    transformers = pytest.importorskip("transformers")
    out = features.compute("ast", clips[:2], sr=SR, **kind_params["ast"])
    extractor = transformers.ASTFeatureExtractor.from_pretrained(ast_folder)
    model = transformers.ASTModel.from_pretrained(ast_folder).eval()
    assert out.shape == (2, 16) and out.dtype == np.float32
    for i in range(2):
        inputs = extractor(resample(clips[i], 8000, 16000), sampling_rate=16000, return_tensors="pt")
        assert inputs["input_values"].shape == (1, 64, 128)  # max_length frames x mel bins
        with torch.inference_mode():
            hidden = model(**inputs).last_hidden_state[0]
        np.testing.assert_allclose(out[i], ((hidden[0] + hidden[1]) / 2).numpy(), rtol=1e-5, atol=1e-6)


def test_ast_folder_of_a_bare_astmodel_loads_and_a_broken_one_names_its_keys(tmp_path, ast_folder):
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import load_file, save_file

    bare = tmp_path / "bare"
    transformers.ASTModel.from_pretrained(ast_folder).save_pretrained(bare)
    transformers.ASTFeatureExtractor.from_pretrained(ast_folder).save_pretrained(bare)
    assert features.compute("ast", np.zeros(SR, np.float32), sr=SR, checkpoint=str(bare)).shape == (16,)

    broken = tmp_path / "broken"
    shutil.copytree(ast_folder, broken)
    weights = load_file(broken / "model.safetensors")
    dropped = next(k for k in weights if k.endswith("layernorm.weight") and "classifier" not in k)
    del weights[dropped]
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ParameterError, match="does not have ASTModel's layout: missing keys"):
        features.compute("ast", np.zeros(SR, np.float32), sr=SR, checkpoint=str(broken))

    other = tmp_path / "other-length"
    shutil.copytree(ast_folder, other)
    transformers.ASTFeatureExtractor(max_length=32).save_pretrained(other)
    with pytest.raises(ParameterError, match="max_length=32.* does not match config.json"):
        features.compute("ast", np.zeros(SR, np.float32), sr=SR, checkpoint=str(other))


# --------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("kind", ["panns", "ast"])
def test_embeddings_do_not_depend_on_the_batch_or_the_threads(kind, clips, kind_params):
    params = features.resolve_params(kind, kind_params[kind])
    whole = features.compute(kind, clips, sr=SR, **params)
    for batch_size in (1, 2):
        parts = [features.compute(kind, clips[i:i + batch_size], sr=SR, **params)
                 for i in range(0, len(clips), batch_size)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(features.compute(kind, clips[None], sr=SR, **params)[0], whole)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = features.compute(kind, clips, sr=SR, **params)
        torch.set_num_threads(3)
        with ThreadPoolExecutor(max_workers=3) as pool:  # as a threaded extraction computes
            parallel = np.concatenate(list(pool.map(lambda c: features.compute(kind, c, sr=SR, **params),
                                                    np.split(clips, [2, 3]))))
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, whole)
    np.testing.assert_array_equal(parallel, whole)


# --------------------------------------------------------------------------- the store
def test_the_store_keys_a_checkpoint_by_its_content_not_its_path(tmp_path, cnn14_file):
    audio = {"sr": 8000, "duration": 0.5, "pad_mode": "zero", "normalize": False}
    key = FeatureRequest("panns", {"checkpoint": str(cnn14_file)}, audio).key
    moved = tmp_path / "elsewhere" / "renamed.pth"
    moved.parent.mkdir()
    shutil.copy(cnn14_file, moved)
    assert FeatureRequest("panns", {"checkpoint": str(moved)}, audio).key == key
    torch.save({"model": official_state_dict(seed=1)}, moved)  # same path, other weights
    assert FeatureRequest("panns", {"checkpoint": str(moved)}, audio).key != key
    digest = features.key_params("panns", {"checkpoint": str(cnn14_file)})["checkpoint"]["sha256"]
    assert digest == hashlib.sha256(cnn14_file.read_bytes()).hexdigest()
    with pytest.raises(ParameterError, match="no such file"):
        FeatureRequest("panns", {"checkpoint": str(tmp_path / "gone.pth")}, audio).key


def test_embeddings_are_extracted_once_and_reused_from_a_moved_checkpoint(folder_root, store, tmp_path,
                                                                         kind_params, monkeypatch):
    dataset = load_dataset("folder", folder_root)
    audio = {"sr": 8000, "duration": 0.5}
    sets = extract(dataset, kind_params, store=store, audio=audio, progress=False)
    assert sets["panns"].feature_shape == (16,) and sets["ast"].feature_shape == (16,)
    assert len(sets["panns"]) == len(dataset.clips) == 12
    X = sets["panns"].read()
    assert X.shape == (12, 16) and np.isfinite(X).all() and X.std(axis=0).max() > 0

    calls = []
    for module in (features.get("panns"), features.get("ast")):
        real = module.compute
        monkeypatch.setattr(module, "compute", lambda *a, _real=real, **k: calls.append(1) or _real(*a, **k))
    moved = tmp_path / "moved" / "cnn14.pth"
    moved.parent.mkdir()
    shutil.copy(kind_params["panns"]["checkpoint"], moved)
    again = extract(dataset, {**kind_params, "panns": {**kind_params["panns"], "checkpoint": str(moved)}},
                    store=store, audio=audio, progress=False)
    assert calls == []  # nothing computed again, not even the parameter check
    assert again["panns"].path == sets["panns"].path and again["ast"].path == sets["ast"].path


def test_a_folder_digest_covers_its_files_and_names_but_not_hidden_metadata(tmp_path, ast_folder):
    copy = tmp_path / "copy"
    shutil.copytree(ast_folder, copy)
    key = features.key_params("ast", {"checkpoint": str(ast_folder)})
    assert features.key_params("ast", {"checkpoint": str(copy)}) == key
    (copy / ".cache" / "huggingface").mkdir(parents=True)  # what a Hub download leaves beside the files
    (copy / ".cache" / "huggingface" / "config.json.metadata").write_text("etag and a time")
    assert features.key_params("ast", {"checkpoint": str(copy)}) == key
    (copy / "config.json").rename(copy / "config-renamed.json")
    assert features.key_params("ast", {"checkpoint": str(copy)}) != key
