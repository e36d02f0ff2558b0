"""The classifiers of the classical Table 3 baselines (scikit-learn, fixed seeds): SVM, NNC, MLR.

SVM  RBF-kernel SVC on standardised features; C and gamma by stratified k-fold cross-validation on
     the training features only (gamma as a multiple of 1 / n_features, sklearn's "scale" for
     standardised data; of 1 / (n_features * variance of the training features) when they are not
     standardised). Ties between classes are broken by the decision values, so the predicted
     class is the argmax of the one-vs-rest decision function; its softmax stands in for the
     probabilities in the prediction files (uncalibrated scores).
NNC  1-nearest neighbour: chi-square distance sum (x - y)^2 / (x + y) for histogram features, Euclidean
     distance on standardised features otherwise. No hyper-parameter. One-hot probabilities.
fit(..., standardise=False) drops the scaling (a protocol of sdc.protocols): the classifiers then see
the features as extracted.
MLR  the paper's "multiple linear regression" is read as multinomial logistic regression (a linear
     model with a softmax over the six classes; a least-squares regression onto class indicators
     would be the literal alternative): standardised features, L2 penalty, lbfgs, C by the same
     cross-validation; whether the final fit converged within MLR_MAX_ITER iterations is recorded.
"""
import pickle
import warnings
from dataclasses import dataclass

import numpy as np

from . import neu
from .errors import UserError

CLASSIFIERS = ("SVM", "NNC", "MLR")
NUM_CLASSES = len(neu.CLASSES)
CV_FOLDS = 5
SVM_C = (0.1, 1.0, 10.0, 100.0, 1000.0)
SVM_GAMMA_SCALE = (0.01, 0.1, 1.0, 10.0)   # gamma = value / n_features
MLR_C = (0.001, 0.01, 0.1, 1.0, 10.0)
MLR_MAX_ITER = 1000
NN_CHUNK = 500  # test rows per chi-square distance block


def grid_description(name, standardise=True):
    """The hyper-parameter search of ``name``, as recorded with its results."""
    if name == "SVM":
        unit = "n_features" if standardise else "(n_features * training feature variance)"
        return {"C": list(SVM_C), "gamma": [f"{g} / {unit}" for g in SVM_GAMMA_SCALE], "cv_folds": CV_FOLDS,
                "scoring": "accuracy"}
    if name == "MLR":
        return {"C": list(MLR_C), "cv_folds": CV_FOLDS, "scoring": "accuracy", "max_iter": MLR_MAX_ITER}
    return {}


class ChiSquareNearestNeighbour:
    """1-NN under the chi-square distance of non-negative histograms (0 / 0 counts as 0); the
    training histograms are kept in float32, the precision they are computed in."""

    def fit(self, features, labels):
        self.features_ = np.asarray(features, np.float32)
        self.labels_ = np.asarray(labels)
        self.classes_ = np.unique(self.labels_)
        return self

    def predict(self, features):
        from sklearn.metrics.pairwise import additive_chi2_kernel
        features = np.asarray(features, np.float32)
        nearest = [additive_chi2_kernel(features[i:i + NN_CHUNK], self.features_).argmax(axis=1)
                   for i in range(0, len(features), NN_CHUNK)]  # the kernel is minus the distance
        return self.labels_[np.concatenate(nearest)]

    def predict_proba(self, features):
        return (self.predict(features)[:, None] == self.classes_[None, :]).astype(np.float64)


@dataclass
class Fitted:
    name: str
    model: object          # the fitted estimator (scaler included)
    chosen: dict           # hyper-parameters picked by cross-validation, and its accuracy

    def probabilities(self, features):
        """(N, 6) scores, column = label, whose argmax is the prediction (labels absent from the
        training set score 0)."""
        if hasattr(self.model, "predict_proba"):
            scores = self.model.predict_proba(features)
        else:
            scores = self.model.decision_function(features)
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores /= scores.sum(axis=1, keepdims=True)
        full = np.zeros((len(scores), NUM_CLASSES))
        full[:, self.model.classes_] = scores
        return full

    def predict(self, features):
        return self.probabilities(features).argmax(axis=1)

    def size_bytes(self):
        return len(pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL))


def cross_validated(pipeline, grid, features, labels, seed, workers):
    """``pipeline`` refitted on all of ``features`` with the grid point of best k-fold accuracy
    (k = CV_FOLDS, or the smallest class's size when a reduced training set has fewer per class)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    counts = np.bincount(labels)
    k = min(CV_FOLDS, int(counts[counts > 0].min()))
    if k < 2:
        raise UserError("cross-validation needs at least 2 training images of every class: use a larger --per-class")
    folds = StratifiedKFold(k, shuffle=True, random_state=seed)
    search = GridSearchCV(pipeline, grid, scoring="accuracy", cv=folds, n_jobs=workers, refit=True)
    search.fit(features, labels)
    chosen = {key.split("__", 1)[1]: value for key, value in search.best_params_.items()}
    chosen.update(cv_accuracy=float(search.best_score_), cv_folds=k)
    return search.best_estimator_, chosen


def fit(name, features, labels, histogram, seed=0, workers=1, standardise=True):
    """Fit classifier ``name`` on the training features; ``histogram``: the features are
    normalised histograms (chi-square 1-NN); ``standardise``: scale them first (SVM, MLR, Euclidean NNC)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    features = np.asarray(features, np.float64)
    scaling = [StandardScaler()] if standardise else []
    if name == "SVM":
        pipeline = make_pipeline(*scaling, SVC(kernel="rbf", break_ties=True, random_state=seed))
        unit = features.shape[1] * (1.0 if standardise else features.var())
        gammas = [g / unit for g in SVM_GAMMA_SCALE]
        model, chosen = cross_validated(pipeline, {"svc__C": SVM_C, "svc__gamma": gammas},
                                        features, labels, seed, workers)
    elif name == "MLR":
        pipeline = make_pipeline(*scaling, LogisticRegression(max_iter=MLR_MAX_ITER))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # weakly regularised folds; recorded below
            model, chosen = cross_validated(pipeline, {"logisticregression__C": MLR_C}, features, labels, seed,
                                            workers)
        chosen["converged"] = bool(model[-1].n_iter_.max() < MLR_MAX_ITER)
    elif name == "NNC":
        model = (ChiSquareNearestNeighbour() if histogram
                 else make_pipeline(*scaling, KNeighborsClassifier(n_neighbors=1)))
        model.fit(features, labels)
        chosen = {"distance": "chi-square" if histogram
                  else f"euclidean on {'standardised' if standardise else 'unscaled'} features"}
    else:
        raise ValueError(f"unknown classifier {name}")
    return Fitted(name, model, chosen)
