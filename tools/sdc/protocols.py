"""The protocols under which the classical Table 3 baselines are trained and tested: where each
split's pixels come from (the 256x256 LMDB records the nets read, or the native 200x200 images),
whether the features are standardised, and feature parameters that differ from sdc.texture's.

A protocol's rows are named ``<FEATURE>+<CLASSIFIER> (<label>)``; the default protocol's keep the
plain name. docs/baselines.md gives the evidence for each protocol and its results.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import baseline_rows, degrade, features, hashing, neu, texture
from .errors import UserError

TRAIN = baseline_rows.TRAIN
# Where a split's pixels come from.
RECORDS = "records"          # the LMDB records as stored: 256x256, degraded at 256 (what the nets read)
RECORDS_200 = "records-200"  # the same records resized back to 200x200
NATIVE = "native"            # the NEU-CLS BMPs (train, original); the enhanced set made at 200 (degraded)
PIXELS = {RECORDS: "the 256x256 LMDB records", RECORDS_200: "the 256x256 LMDB records resized to 200x200",
          NATIVE: "the native 200x200 images"}


@dataclass(frozen=True)
class Protocol:
    name: str
    label: str                # row-name suffix; "" for the default protocol
    train: str                # RECORDS or NATIVE
    original: str             # RECORDS or NATIVE
    degraded: str             # RECORDS, RECORDS_200 or NATIVE
    summary: str
    standardise: bool = True  # features scaled to zero mean, unit variance before SVM / MLR / Euclidean NNC
    params: dict = field(default_factory=dict)  # {feature: its parameters} where they differ from the default
    features: tuple = texture.FEATURES

    def pixels(self, split):
        return {TRAIN: self.train, "original": self.original}.get(split, self.degraded)

    def feature_params(self, feature):
        return self.params.get(feature, texture.DEFAULT_PARAMS[feature])

    def describe(self):
        """What an evaluation records of its protocol."""
        return {"name": self.name, "label": self.label, "summary": self.summary, "standardise": self.standardise,
                "pixels": {split: PIXELS[self.pixels(split)] for split in (TRAIN, "original", "degraded")}}


DEFAULT = "native-200"
PROTOCOLS = {p.name: p for p in (
    Protocol(DEFAULT, "", NATIVE, NATIVE, NATIVE,
             "everything at 200x200; the degraded subsets made at 200x200 (tools/make_enhanced.py --size 200)"),
    Protocol("network-input", "all 256", RECORDS, RECORDS, RECORDS,
             "everything at 256x256: trained and tested on the records the nets read"),
    Protocol("scale-mismatch", "train 200, degraded 256", NATIVE, NATIVE, RECORDS,
             "trained and tested on the native 200x200 images, the degraded subsets at 256x256"),
    Protocol("test-256", "train 200, test 256", NATIVE, RECORDS, RECORDS,
             "trained on the native 200x200 images, every test subset at 256x256"),
    Protocol("degraded-256-resized", "all 200, degraded at 256", NATIVE, NATIVE, RECORDS_200,
             "everything at 200x200; the degraded subsets made at 256x256 and resized back to 200x200"),
    Protocol("raw-features", "no standardisation", RECORDS, RECORDS, RECORDS,
             "as network-input, the classifiers on the unscaled features", standardise=False),
    Protocol("glcm-8-levels", "8 grey levels, distance 1", RECORDS, RECORDS, RECORDS,
             "as network-input, GLCM on 8 grey levels at distance 1 only (MATLAB graycomatrix's defaults)",
             params={"GLCM": texture.GlcmParams(levels=8, distances=(1,))}, features=("GLCM",)),
)}


def row_name(feature, classifier, protocol):
    base = f"{feature}+{classifier}"
    return f"{base} ({protocol.label})" if protocol.label else base


def neu_locator(neu_dir):
    """(locate, identity) of the NEU-CLS BMPs: the verified file of a list path's name; the identity
    is the manifest they were verified against."""
    files = neu.verified_files(neu.locate(neu_dir))
    identity = "NEU-CLS " + hashing.sha256_file(neu.MANIFEST)[:16]
    return (lambda rel: files.get(Path(rel).name)), identity


def enhanced_locator(root):
    """(locate, identity) of an enhanced set made at 200x200 by tools/make_enhanced.py --size 200."""
    info_path = Path(root) / "generation.json"
    fix = f"make it with tools/make_enhanced.py --size {neu.IMAGE_SIDE} --out {root}"
    if not info_path.is_file():
        raise UserError(f"{info_path} not found: {fix}")
    info = json.loads(info_path.read_text())
    if info.get("size") != neu.IMAGE_SIDE:
        raise UserError(f"{root} was made at {info.get('size')}x{info.get('size')}, not "
                        f"{neu.IMAGE_SIDE}x{neu.IMAGE_SIDE}: {fix}")
    return (lambda rel: Path(root) / rel), f"enhanced set {info['fingerprint'][:16]}"


def image_sources(protocol, paths, neu_dir=None, enhanced_200=None):
    """{split: features.ImageSource} of ``protocol`` over the LMDBs ``paths`` (baseline_rows.lmdb_paths,
    or some of its splits): every source holds the images of its LMDB's records, in their order, with the
    protocol's pixels. NEU-CLS is needed only for the native splits asked for, the enhanced set only for
    native degraded subsets."""
    native = {split for split in paths if protocol.pixels(split) == NATIVE}
    locators = {}
    if native & {TRAIN, "original"}:
        locators[TRAIN] = locators["original"] = neu_locator(neu_dir)
    if native - {TRAIN, "original"}:
        if enhanced_200 is None:
            raise UserError(f"protocol {protocol.name} needs the enhanced set made at {neu.IMAGE_SIDE}x"
                            f"{neu.IMAGE_SIDE}: pass --enhanced-200 DIR (tools/make_enhanced.py --size 200)")
        locators.update(dict.fromkeys(degrade.SUBSETS, enhanced_locator(enhanced_200)))
    sources = {}
    for split, path in paths.items():
        pixels = protocol.pixels(split)
        if pixels == NATIVE:
            locate, identity = locators[split]
            sources[split] = features.file_images(path, locate, identity, PIXELS[NATIVE])
        else:
            sources[split] = features.lmdb_images(path, neu.IMAGE_SIDE if pixels == RECORDS_200 else None)
    return sources
