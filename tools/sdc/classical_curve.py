"""A classical Table 3 row as a model of tools/extra/robustness_curves.py.

A row <FEATURE>+<CLASSIFIER> under a protocol of sdc.protocols is fitted once, as
tools/classical_baselines.py fits it: the protocol's training images (sdc.protocols.image_sources),
their features from the same cache (sdc.features.source_features), sdc.classical.fit with the same
seed. It then classifies degraded test images. Which pixels the sweep degrades for it is the
protocol's choice for its degraded subsets: the native 200x200 BMP behind each test record (NATIVE),
or the 256x256 record (RECORDS; RECORDS_200 resizes the degraded record to 200x200 before the
feature is extracted).

A curve model, net or row, has a ``name``, ``pixels`` (RECORDS or NATIVE: the originals the sweep
degrades for it) and ``correct(images)``: whether it classifies each (key, grey uint8 image, label)
right. A fitted ClassicalCurve pickles, so worker processes can take it as it is.
"""
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import baseline_rows, classical, features, neu, protocols, texture
from .errors import UserError

TRAIN = baseline_rows.TRAIN
RECORDS, NATIVE = protocols.RECORDS, protocols.NATIVE


def parse_row(row, protocol_name):
    """(feature, classifier, Protocol) of a Table 3 row such as "AECLBP+SVM" under a protocol's name."""
    protocol = protocols.PROTOCOLS.get(protocol_name)
    if protocol is None:
        raise UserError(f"--classical {row} {protocol_name}: unknown protocol; pass one of "
                        f"{', '.join(protocols.PROTOCOLS)} (tools/sdc/protocols.py)")
    feature, _, classifier = row.partition("+")
    if feature not in texture.FEATURES or classifier not in classical.CLASSIFIERS:
        raise UserError(f"--classical {row}: unknown row; pass FEATURE+CLASSIFIER with FEATURE one of "
                        f"{', '.join(texture.FEATURES)} and CLASSIFIER one of {', '.join(classical.CLASSIFIERS)}, "
                        "e.g. AECLBP+SVM")
    if feature not in protocol.features:
        raise UserError(f"--classical {row} {protocol.name}: that protocol has {', '.join(protocol.features)} "
                        f"rows only; pass another protocol")
    return feature, classifier, protocol


def sweep_pixels(degraded):
    """The originals the sweep degrades for a protocol whose degraded subsets have ``degraded`` pixels:
    NATIVE, or RECORDS (for RECORDS_200 too)."""
    return NATIVE if degraded == NATIVE else RECORDS


def test_originals(pixels, test_lmdb, neu_dir=None):
    """ImageSource of the original test images as ``pixels`` has them: the records of ``test_lmdb``
    (RECORDS), or the NEU-CLS BMPs they were made from, found by the records' keys (NATIVE)."""
    if pixels == NATIVE:
        locate, identity = protocols.neu_locator(neu_dir)
        return features.file_images(test_lmdb, locate, identity, protocols.PIXELS[NATIVE])
    return features.lmdb_images(test_lmdb)


@dataclass(frozen=True)
class Plan:
    """A row to fit: its inputs, checked (plan() builds it)."""
    name: str                      # the Table 3 row name, protocols.row_name
    feature: str
    classifier: str
    protocol: protocols.Protocol
    seed: int                      # cross-validation folds, as classical_baselines' --seed
    train: features.ImageSource    # the protocol's training images
    train_lmdb: Path

    @property
    def params(self):
        return self.protocol.feature_params(self.feature)

    @property
    def pixels(self):
        return sweep_pixels(self.protocol.degraded)

    def inputs(self):
        """What the row is made from, as JSON (a sweep's up-to-date check compares it)."""
        search = classical.grid_description(self.classifier, self.protocol.standardise)
        return json.loads(json.dumps({
            "protocol": self.protocol.describe(), "feature": texture.describe(self.feature, self.params),
            "classifier": {"name": self.classifier, "search": search, "seed": self.seed},
            "train": self.train.identity}))

    def fit_key(self):
        """Rows with the same key have the same fit (e.g. native-200 and degraded-256-resized)."""
        inputs = self.inputs()
        return json.dumps([inputs["train"], inputs["feature"], inputs["classifier"], self.protocol.standardise])


def plan(row, protocol_name, train_lmdb, lmdb_dir, neu_dir=None, seed=0):
    """The Plan of ``row`` under ``protocol_name``; a UserError for an unknown row or protocol, a missing
    LMDB, or NEU-CLS missing where the protocol trains on it."""
    feature, classifier, protocol = parse_row(row, protocol_name)
    train_lmdb = baseline_rows.lmdb_paths(train_lmdb, lmdb_dir)[TRAIN]
    train = protocols.image_sources(protocol, {TRAIN: train_lmdb}, neu_dir)[TRAIN]
    return Plan(protocols.row_name(feature, classifier, protocol), feature, classifier, protocol, seed, train,
                train_lmdb)


@dataclass(frozen=True)
class ClassicalCurve:
    name: str
    feature: str
    params: object
    degraded: str                  # the protocol's pixels for degraded subsets: NATIVE, RECORDS or RECORDS_200
    fitted: classical.Fitted
    record: dict                   # the fit: chosen hyper-parameters, fit_s, training features

    @property
    def pixels(self):
        return sweep_pixels(self.degraded)

    def feature_of(self, image):
        """The row's feature of one degraded grey image (a RECORDS_200 row resizes it to 200x200 first)."""
        if self.degraded == protocols.RECORDS_200:
            image = neu.resize_bilinear(image, neu.IMAGE_SIDE)
        return texture.extract(self.feature, image, self.params)

    def correct(self, images):
        """bool (N,): whether the row classifies each (key, grey uint8 image, label) of ``images`` right."""
        rows = np.stack([self.feature_of(image) for _, image, _ in images])
        return self.fitted.predict(rows) == np.array([label for _, _, label in images])


def fit(plans, work_dir, workers=1, progress=None):
    """ClassicalCurve of each plan: its training features from the cache in ``work_dir`` (extracted
    there by ``workers`` processes where missing), then classical.fit; plans with the same fit_key share
    one fit. ``progress(plan)``: a tqdm-like bar counting extracted images (None: no bar)."""
    fits, curves = {}, []
    for item in plans:
        key = item.fit_key()
        if key not in fits:
            with progress(item) if progress else contextlib.nullcontext() as bar:
                train = features.source_features({TRAIN: item.train}, item.feature, item.params, work_dir, workers,
                                                 bar)[TRAIN]
            start = time.perf_counter()
            fitted = classical.fit(item.classifier, train.features, train.labels,
                                   histogram=item.feature in texture.HISTOGRAM_FEATURES, seed=item.seed,
                                   workers=workers, standardise=item.protocol.standardise)
            record = {"chosen": fitted.chosen, "fit_s": round(time.perf_counter() - start, 2),
                      "train_images": len(train.keys),
                      "train_features": {k: train.record.get(k) for k in baseline_rows.EXTRACTION_KEYS}}
            fits[key] = fitted, record
        fitted, record = fits[key]
        curves.append(ClassicalCurve(item.name, item.feature, item.params, item.protocol.degraded, fitted, record))
    return curves
