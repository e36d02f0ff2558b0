"""Pretrained weights: the manifest, sha1 verification, local search, download, and netcheck's reports."""
import subprocess
import sys
from pathlib import Path

import pytest

from sdc import hashing, netcheck, weights
from sdc.errors import UserError

REPO = Path(__file__).resolve().parents[1]
PROTOTXT = REPO / "prototxt"
SHA1 = {"squeezenet_v1.0": "579d0beb658e43c45937bf8bb5e4034fea4e1f69",
        "compressed_SqueezeNet": "d366493d585f65f4badc23b1ae943e9275db1cf4",
        "SDC-SN": "92a93b68c48e87b44488230f0c9dcd06f278c8d1",
        "SDC-SN-ELF": "d308d2882d112976b9084dfcfc5ceff50e761b22",
        "SDC-SN-ELF-MRF": "3ddb645bc0133112805018c674c4d85bbb499383",
        "bvlc_reference_caffenet": "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"}  # BVLC Model Zoo readme
RELEASED = ("SDC-SN", "SDC-SN-ELF", "SDC-SN-ELF-MRF")


def local_model(path, sha1=None, url=None):
    """A manifest entry for a file of this test (downloaded through a file:// URL)."""
    return weights.Model(name="test file", caffemodel=path.name, caffemodel_url=url or path.as_uri(),
                         sha1=sha1 or hashing.sha1_file(path), license="-", source="-")


def run_tool(*args, env=None):
    return subprocess.run([sys.executable, str(REPO / "tools" / "fetch_pretrained.py"), *map(str, args)],
                          capture_output=True, text=True, env=env)


def test_manifest_lists_every_file_with_its_sha1():
    models = weights.read_manifest()
    assert {k: m.sha1 for k, m in models.items()} == SHA1
    assert models["squeezenet_v1.0"].caffemodel == "squeezenet_v1.0.caffemodel"
    assert all(m.license and m.source for m in models.values())
    assert all(m.caffemodel_url.startswith("https://github.com/") for k, m in models.items() if k != "bvlc_reference_caffenet")
    assert models["bvlc_reference_caffenet"].caffemodel_url == \
        "http://dl.caffe.berkeleyvision.org/bvlc_reference_caffenet.caffemodel"


def test_bad_manifest_is_refused(tmp_path):
    bad = tmp_path / "readme.md"
    bad.write_text("---\nname: x\ncaffemodel: x.caffemodel\n---\n")
    with pytest.raises(UserError, match="needs exactly"):
        weights.read_manifest(bad)


def test_released_models_are_copied_from_a_local_dir_and_verified(pretrained_src, tmp_path):
    models = weights.read_manifest()
    for model_id in RELEASED:
        path = weights.fetch(models[model_id], tmp_path, from_dir=pretrained_src, offline=True)
        assert path == tmp_path / f"{model_id}.caffemodel" and hashing.sha1_file(path) == SHA1[model_id]
    before = path.stat().st_mtime_ns
    assert weights.fetch(models["SDC-SN-ELF-MRF"], tmp_path, offline=True) == path  # verified copy is kept
    assert path.stat().st_mtime_ns == before


def test_wrong_sha1_is_an_error_and_the_file_is_not_used(tmp_path):
    source = tmp_path / "src" / "nested"
    source.mkdir(parents=True)
    (source / "SDC-SN.caffemodel").write_bytes(b"not the released model")
    dest = tmp_path / "weights"
    with pytest.raises(UserError, match=r"sha1 must be 92a93b68.*src/nested/SDC-SN.caffemodel.*file not used"):
        weights.fetch(weights.read_manifest()["SDC-SN"], dest, from_dir=tmp_path / "src")
    assert not (dest / "SDC-SN.caffemodel").exists()


def test_missing_offline_names_the_flag_the_env_var_and_the_url(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.ENV_DIR, raising=False)
    model = weights.read_manifest()["squeezenet_v1.0"]
    with pytest.raises(UserError) as error:
        weights.fetch(model, tmp_path, offline=True)
    message = str(error.value)
    for part in ("--from DIR", "SDC_PRETRAINED_DIR", model.caffemodel_url, "--offline"):
        assert part in message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=r"not under .*empty.*--from DIR"):
        weights.fetch(model, tmp_path, from_dir=empty, offline=True)


def test_failed_download_names_the_url(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.ENV_DIR, raising=False)
    model = local_model(tmp_path / "x.caffemodel", sha1="0" * 40, url="http://127.0.0.1:9/x.caffemodel")
    with pytest.raises(UserError, match=r"downloading failed .*http://127.0.0.1:9/x.caffemodel.*SDC_PRETRAINED_DIR"):
        weights.fetch(model, tmp_path / "weights")


def test_download_is_verified_before_it_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.ENV_DIR, raising=False)
    served = tmp_path / "served" / "model.caffemodel"
    served.parent.mkdir()
    served.write_bytes(b"weights" * 1000)
    dest = tmp_path / "weights"
    assert weights.fetch(local_model(served), dest).read_bytes() == served.read_bytes()
    with pytest.raises(UserError, match="file not kept"):
        weights.fetch(local_model(served, sha1="1" * 40), tmp_path / "other")
    assert not (tmp_path / "other" / "model.caffemodel").exists()


def test_imagenet_weights_prefer_the_original(tmp_path):
    with pytest.raises(UserError, match="decode_deep_compression"):
        weights.imagenet_weights(tmp_path)
    (tmp_path / weights.DECODED_IMAGENET).write_bytes(b"decoded")
    assert weights.imagenet_weights(tmp_path) == tmp_path / weights.DECODED_IMAGENET


def test_a_corrupt_original_is_an_error_not_a_reason_to_use_the_stand_in(tmp_path):
    (tmp_path / weights.DECODED_IMAGENET).write_bytes(b"decoded")
    corrupt = tmp_path / "squeezenet_v1.0.caffemodel"
    corrupt.write_bytes(b"truncated")
    expected = (f"{corrupt} has sha1 {hashing.sha1_file(corrupt)}, but squeezenet_v1.0.caffemodel must have sha1 "
                f"{SHA1['squeezenet_v1.0']}: replace it with the original file or delete it")
    with pytest.raises(UserError) as error:
        weights.imagenet_weights(tmp_path)
    assert str(error.value) == expected
    model = weights.read_manifest()["squeezenet_v1.0"]
    with pytest.raises(UserError) as error:  # the same file where fetch keeps its verified copies
        weights.fetch(model, tmp_path, offline=True)
    assert str(error.value) == expected and not isinstance(error.value, weights.NotFound)


def test_only_a_file_found_nowhere_is_not_found(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.ENV_DIR, raising=False)
    with pytest.raises(weights.NotFound):
        weights.fetch(weights.read_manifest()["squeezenet_v1.0"], tmp_path, offline=True)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "squeezenet_v1.0.caffemodel").write_bytes(b"wrong")
    with pytest.raises(UserError, match="sha1 must be 579d0beb") as error:
        weights.fetch(weights.read_manifest()["squeezenet_v1.0"], tmp_path, from_dir=tmp_path / "src", offline=True)
    assert not isinstance(error.value, weights.NotFound)


def test_missing_ok_passes_absent_files_but_not_corrupt_ones(pretrained_src, tmp_path):
    env = {"PATH": "/usr/bin:/bin", weights.ENV_DIR: str(pretrained_src)}
    absent = run_tool("--dest", tmp_path, "--offline", "--missing-ok", "squeezenet_v1.0", "SDC-SN", env=env)
    assert absent.returncode == 0, absent.stderr
    assert absent.stdout.startswith("missing squeezenet_v1.0: squeezenet_v1.0.caffemodel: not under ")
    assert f"ok SDC-SN: {tmp_path / 'SDC-SN.caffemodel'}" in absent.stdout
    (tmp_path / "squeezenet_v1.0.caffemodel").write_bytes(b"corrupt")
    corrupt = run_tool("--dest", tmp_path, "--offline", "--missing-ok", "squeezenet_v1.0", env=env)
    assert corrupt.returncode == 2 and corrupt.stderr.count("\n") == 1
    assert f"{tmp_path / 'squeezenet_v1.0.caffemodel'} has sha1 " in corrupt.stderr
    assert f"must have sha1 {SHA1['squeezenet_v1.0']}" in corrupt.stderr


def test_cli_fetches_from_the_env_dir_and_fails_in_one_line(pretrained_src, tmp_path):
    env = {"PATH": "/usr/bin:/bin", weights.ENV_DIR: str(pretrained_src)}
    done = run_tool("--dest", tmp_path, "--offline", "SDC-SN", "compressed_SqueezeNet", env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SDC-SN.caffemodel", "compressed_SqueezeNet.net"]
    failed = run_tool("--dest", tmp_path, "--offline", "squeezenet_v1.0", env={"PATH": "/usr/bin:/bin"})
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("error: 1 file(s) not fetched")
    assert run_tool("no-such-model").returncode == 2


def test_netcheck_lists_every_mismatch(released_dir, tmp_path):
    mrf = released_dir / "SDC-SN-ELF-MRF.caffemodel"
    found = netcheck.compare(PROTOTXT / "SDC-SN-ELF_deploy.prototxt", mrf)
    assert (found.missing, found.extra, found.shape) == ([], ["conv10a", "conv11"], [])
    found = netcheck.compare(PROTOTXT / "SDC-SN-ELF-MRF_deploy.prototxt", released_dir / "SDC-SN.caffemodel")
    assert (found.missing, found.extra, found.shape) == (["conv10a", "conv11"], [], [])
    seven_classes = tmp_path / "seven.prototxt"
    seven_classes.write_text((PROTOTXT / "SDC-SN-ELF-MRF_deploy.prototxt").read_text().replace(
        'name: "conv11"\n  type: "Convolution"\n  bottom: "pool10"\n  top: "conv11"\n  convolution_param {\n'
        '    num_output: 6', 'name: "conv11"\n  type: "Convolution"\n  bottom: "pool10"\n  top: "conv11"\n'
        '  convolution_param {\n    num_output: 7'))
    found = netcheck.compare(seven_classes, mrf)
    assert found.shape == [("conv11", [(6, 12, 1, 1), (6,)], [(7, 12, 1, 1), (7,)])]
    with pytest.raises(UserError, match=r"conv11: caffemodel 6x12x1x1, 6 vs prototxt 7x12x1x1, 7 \("):
        netcheck.check(seven_classes, mrf)
    with pytest.raises(UserError, match=r"does not fit .*not in the caffemodel: conv10a, conv11"):
        netcheck.load(PROTOTXT / "SDC-SN-ELF-MRF_deploy.prototxt", released_dir / "SDC-SN.caffemodel")
    assert not netcheck.check(PROTOTXT / "SDC-SN-ELF_deploy.prototxt", mrf, allow_extra={"conv10a", "conv11"}).missing


def test_netcheck_reads_legacy_blob_shapes(caffe, tmp_path):
    from caffe.proto import caffe_pb2
    net = caffe.Net(str(PROTOTXT / "SDC-SN_deploy.prototxt"), caffe.TEST)
    model = caffe_pb2.NetParameter()
    for name, blobs in net.params.items():
        layer = model.layer.add(name=name)
        for blob in blobs:
            legacy = (1,) * (4 - blob.data.ndim) + blob.data.shape
            layer.blobs.add(num=legacy[0], channels=legacy[1], height=legacy[2], width=legacy[3])
    path = tmp_path / "legacy.caffemodel"
    path.write_bytes(model.SerializeToString())
    assert not netcheck.compare(PROTOTXT / "SDC-SN_deploy.prototxt", path)
    path.write_bytes(b"\xff garbage")
    with pytest.raises(UserError, match="not a caffemodel"):
        netcheck.compare(PROTOTXT / "SDC-SN_deploy.prototxt", path)
