"""CIFAR / Tiny-ImageNet loading from archives the tests build in the official formats."""
from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sparsetopo.data import download, load_dataset
from sparsetopo.data.download import ArchiveSpec, file_md5
from sparsetopo.data.transforms import normalize
from sparsetopo.errors import DatasetError


# ------------------------------------------------------------------------ synthetic archives
def _cifar_records(labels: list[int], coarse: list[int] | None, seed: int) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    pixels[:, 0, 0, 0], pixels[:, 1, 0, 0], pixels[:, 2, 0, 0] = 11, 22, 33  # plane order R, G, B
    heads = [np.array([lab], np.uint8) if coarse is None else np.array([c, lab], np.uint8)
             for lab, c in zip(labels, coarse or labels)]
    raw = b"".join(h.tobytes() + p.tobytes() for h, p in zip(heads, pixels))
    return raw, pixels


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_cifar10(path: Path) -> dict[str, np.ndarray]:
    """cifar-10-binary.tar.gz with 5 train batches of 2 records and a test batch of 3."""
    train_px, train_y = [], []
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            labels = [(2 * i) % 10, (2 * i + 1) % 10]
            raw, px = _cifar_records(labels, None, seed=i)
            _add(tar, f"cifar-10-batches-bin/data_batch_{i}.bin", raw)
            train_px.append(px)
            train_y += labels
        raw, test_px = _cifar_records([9, 0, 4], None, seed=99)
        _add(tar, "cifar-10-batches-bin/test_batch.bin", raw)
        _add(tar, "cifar-10-batches-bin/batches.meta.txt", b"airplane\n")
    return {"train": np.concatenate(train_px), "train_y": np.array(train_y), "test": test_px,
            "test_y": np.array([9, 0, 4])}


def _use_archive(monkeypatch, name: str, archive: Path) -> None:
    """Make ``archive`` the 'official' file of ``name`` (its MD5 replaces the official one)."""
    spec = download.ARCHIVES[name]
    monkeypatch.setitem(download.ARCHIVES, name, ArchiveSpec(spec.filename, archive.as_uri(), file_md5(archive)))


# ----------------------------------------------------------------------------------- CIFAR
def test_cifar10_binary_records_decode(tmp_path, monkeypatch):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    truth = make_cifar10(archive)
    _use_archive(monkeypatch, "cifar10", archive)
    bundle = load_dataset("cifar10", root=tmp_path)
    assert (bundle.name, bundle.num_classes, len(bundle.train), len(bundle.test)) == ("cifar10", 10, 10, 3)
    np.testing.assert_array_equal(bundle.train.images.numpy(), truth["train"])
    np.testing.assert_array_equal(bundle.test.labels.numpy(), truth["test_y"])
    np.testing.assert_array_equal(bundle.train.labels.numpy(), truth["train_y"])
    assert bundle.train.images[:, :, 0, 0].tolist()[0] == [11, 22, 33]
    x, y = bundle.test[1]
    expected = normalize(torch.from_numpy(truth["test"][1:2]), (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    assert y == 0 and torch.equal(x, expected[0])          # test split: normalise only
    assert (tmp_path / "cifar10.npz").is_file()
    with np.load(tmp_path / "cifar10.npz", allow_pickle=False) as npz:
        assert npz["train_images"].dtype == np.uint8


def test_cifar_cache_is_used_and_rebuilt_when_corrupted(tmp_path, monkeypatch):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    truth = make_cifar10(archive)
    _use_archive(monkeypatch, "cifar10", archive)
    load_dataset("cifar10", root=tmp_path)
    archive.rename(tmp_path / "elsewhere.tar.gz")
    assert len(load_dataset("cifar10", root=tmp_path).train) == 10      # from cache, no archive needed
    (tmp_path / "cifar10.npz").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not found"):                 # cache bad, archive gone
        with pytest.warns(UserWarning, match="unreadable"):
            load_dataset("cifar10", root=tmp_path)
    (tmp_path / "elsewhere.tar.gz").rename(archive)
    with pytest.warns(UserWarning, match="rebuilding"):
        bundle = load_dataset("cifar10", root=tmp_path)
    np.testing.assert_array_equal(bundle.test.images.numpy(), truth["test"])


def test_cifar100_uses_fine_label(tmp_path, monkeypatch):
    archive = tmp_path / "cifar-100-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        raw, px = _cifar_records([57, 3, 99], coarse=[1, 19, 0], seed=0)
        _add(tar, "cifar-100-binary/train.bin", raw)
        raw_t, _ = _cifar_records([42], coarse=[7], seed=1)
        _add(tar, "cifar-100-binary/test.bin", raw_t)
    _use_archive(monkeypatch, "cifar100", archive)
    bundle = load_dataset("cifar100", root=tmp_path)
    assert bundle.num_classes == 100
    assert bundle.train.labels.tolist() == [57, 3, 99] and bundle.test.labels.tolist() == [42]
    np.testing.assert_array_equal(bundle.train.images.numpy(), px)
    assert not bundle.test.augment
    assert load_dataset("cifar100", root=tmp_path, official_cifar100_test_aug=True).test.augment


def test_checksum_mismatch_is_dataset_error(tmp_path):
    make_cifar10(tmp_path / "cifar-10-binary.tar.gz")           # not the official bytes
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10", root=tmp_path)
    msg = str(info.value)
    assert "c32a1d4ab5d03f1284b67883e8d87530" in msg and "cifar-10-binary.tar.gz" in msg and "MD5" in msg


def test_missing_archive_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny_imagenet32", root=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "tiny-imagenet-200.zip") in msg and "90528d7ca1a48142e341f4ef8d21d0de" in msg
    assert "http" in msg


def test_truncated_cifar_file_is_dataset_error(tmp_path, monkeypatch):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        raw, _ = _cifar_records([1, 2], None, seed=0)
        for i in range(1, 6):
            _add(tar, f"cifar-10-batches-bin/data_batch_{i}.bin", raw)
        _add(tar, "cifar-10-batches-bin/test_batch.bin", raw[:-7])
    _use_archive(monkeypatch, "cifar10", archive)
    with pytest.raises(DatasetError, match="test_batch.bin.*records"):
        load_dataset("cifar10", root=tmp_path)


def test_download_verifies_and_removes_bad_file(tmp_path, monkeypatch):
    source = tmp_path / "server" / "cifar-10-binary.tar.gz"
    source.parent.mkdir()
    make_cifar10(source)
    root = tmp_path / "root"
    _use_archive(monkeypatch, "cifar10", source)                   # URL = file://.../server/...
    assert len(load_dataset("cifar10", root=root, download=True).train) == 10
    assert file_md5(root / "cifar-10-binary.tar.gz") == file_md5(source)

    spec = download.ARCHIVES["cifar10"]
    monkeypatch.setitem(download.ARCHIVES, "cifar10", ArchiveSpec(spec.filename, spec.url, "0" * 32))
    other = tmp_path / "root2"
    with pytest.raises(DatasetError, match="0{32}"):
        load_dataset("cifar10", root=other, download=True)
    assert not (other / "cifar-10-binary.tar.gz").exists()


def test_data_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSETOPO_DATA", str(tmp_path / "envroot"))
    with pytest.raises(DatasetError, match="envroot"):
        load_dataset("cifar100")


# ---------------------------------------------------------------------------- Tiny-ImageNet
WNIDS = ["n09999999", "n01443537"]   # unsorted on purpose: labels follow the sorted order


def _jpeg(rng: np.random.Generator, mode: str = "RGB") -> bytes:
    shape = (64, 64, 3) if mode == "RGB" else (64, 64)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode=mode).save(buf, "JPEG")
    return buf.getvalue()


def make_tiny(path: Path, val_per_class: int = 27) -> dict[str, bytes]:
    """tiny-imagenet-200.zip: 2 classes, 3 train images each (one greyscale), 27 val each."""
    rng = np.random.default_rng(0)
    files: dict[str, bytes] = {"tiny-imagenet-200/wnids.txt": ("\n".join(WNIDS) + "\n").encode()}
    for w in WNIDS:
        for k in range(3):
            files[f"tiny-imagenet-200/train/{w}/images/{w}_{k}.JPEG"] = _jpeg(rng, "L" if k == 1 else "RGB")
        files[f"tiny-imagenet-200/train/{w}/{w}_boxes.txt"] = b""
    lines = []
    for i in range(val_per_class * len(WNIDS)):
        files[f"tiny-imagenet-200/val/images/val_{i}.JPEG"] = _jpeg(rng)
        lines.append(f"val_{i}.JPEG\t{WNIDS[i % 2]}\t0\t0\t63\t63")
    files["tiny-imagenet-200/val/val_annotations.txt"] = ("\n".join(lines) + "\n").encode()
    files["tiny-imagenet-200/test/images/test_0.JPEG"] = _jpeg(rng)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return files


def _pil_box32(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB").resize((32, 32), Image.BOX)).transpose(2, 0, 1)


def test_tiny_imagenet_layout_labels_and_box(tmp_path, monkeypatch):
    archive = tmp_path / "tiny-imagenet-200.zip"
    files = make_tiny(archive)
    _use_archive(monkeypatch, "tiny_imagenet32", archive)
    bundle = load_dataset("tiny_imagenet32", root=tmp_path)
    assert bundle.num_classes == 2 and len(bundle.train) == 6
    assert bundle.train.labels.tolist() == [0, 0, 0, 1, 1, 1]      # n01443537 first
    first = sorted(WNIDS)[0]
    for k in range(3):   # class 0's images, sorted by name, incl. the greyscale one (RGB-converted)
        expected = _pil_box32(files[f"tiny-imagenet-200/train/{first}/images/{first}_{k}.JPEG"])
        np.testing.assert_array_equal(bundle.train.images[k].numpy(), expected)
    gray = bundle.train.images[1]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


def test_tiny_imagenet_val_test_split_by_sorted_name(tmp_path, monkeypatch):
    archive = tmp_path / "tiny-imagenet-200.zip"
    files = make_tiny(archive)
    _use_archive(monkeypatch, "tiny_imagenet32", archive)
    val = load_dataset("tiny_imagenet32", root=tmp_path, tiny_test_split="val").test
    test = load_dataset("tiny_imagenet32", root=tmp_path, tiny_test_split="test").test
    every = load_dataset("tiny_imagenet32", root=tmp_path, tiny_test_split="all").test
    assert (len(val), len(test), len(every)) == (50, 4, 54)
    for label, wnid_index in ((0, 1), (1, 0)):   # label 0 = sorted-first wnid = WNIDS[1] = odd files
        names = sorted(f"val_{i}.JPEG" for i in range(54) if i % 2 == wnid_index)
        held_out = [_pil_box32(files[f"tiny-imagenet-200/val/images/{n}"]) for n in names[25:]]
        got = test.images[test.labels == label].numpy()
        np.testing.assert_array_equal(got, np.stack(held_out))
        first = _pil_box32(files[f"tiny-imagenet-200/val/images/{names[0]}"])
        np.testing.assert_array_equal(val.images[val.labels == label][0].numpy(), first)


def test_tiny_imagenet_bad_archive_errors(tmp_path, monkeypatch):
    archive = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("tiny-imagenet-200/val/val_annotations.txt", "")
    _use_archive(monkeypatch, "tiny_imagenet32", archive)
    with pytest.raises(DatasetError, match="wnids.txt"):
        load_dataset("tiny_imagenet32", root=tmp_path)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("tiny-imagenet-200/wnids.txt", "n1\n")
        buf = io.BytesIO()
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(buf, "JPEG")
        zf.writestr("tiny-imagenet-200/train/n1/images/n1_0.JPEG", buf.getvalue())
        zf.writestr("tiny-imagenet-200/val/val_annotations.txt", "")
    _use_archive(monkeypatch, "tiny_imagenet32", archive)
    with pytest.raises(DatasetError, match="64x48, expected 64x64"):
        load_dataset("tiny_imagenet32", root=tmp_path)



def test_normalisation_constants_and_classes_are_the_spec_values():
    """Spec models-and-pruning.md §4: per-dataset mean / std (the approximate CIFAR-10 std is kept)."""
    from sparsetopo.data import cifar, tiny_imagenet

    c10, c100 = cifar.LAYOUTS["cifar10"], cifar.LAYOUTS["cifar100"]
    assert (c10.mean, c10.std, c10.num_classes) == ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), 10)
    assert (c100.mean, c100.std, c100.num_classes) == ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761), 100)
    assert (c100.label_bytes, c100.label_offset) == (2, 1)  # the fine label
    assert (tiny_imagenet.MEAN, tiny_imagenet.STD) == ((0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821))
    assert tiny_imagenet.VAL_PER_CLASS == 25


def test_unwritable_cache_converts_in_memory_with_a_warning(tmp_path, monkeypatch):
    arrays = {"a": np.arange(3, dtype=np.uint8)}
    calls = []

    def convert():
        calls.append(1)
        return arrays

    blocker = tmp_path / "a_file"  # the data root is a regular file: no directory can be made there
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="cannot write the dataset cache"):
        out = download.load_or_convert(blocker / "d.npz", ("a",), convert)
    np.testing.assert_array_equal(out["a"], arrays["a"])

    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(download, "atomic_path", refuse)  # read-only root: the cache cannot be written
    with pytest.warns(UserWarning, match="cannot write the dataset cache"):
        out = download.load_or_convert(tmp_path / "d.npz", ("a",), convert)
    np.testing.assert_array_equal(out["a"], arrays["a"])
    assert len(calls) == 2 and not (tmp_path / "d.npz").exists()
