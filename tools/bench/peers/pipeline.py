"""The Python peer of `logitflow-bench pipeline --vs-python`: the same work in one process.

Reads the CSV with pandas, holds out a test part (the same fraction as logitflow), standardises
with the training part's mean and deviation, fits an unpenalised logistic regression exactly
(scikit-learn's default solver, lbfgs, to its tolerance; and newton-cholesky, the solver closest
to logitflow's newton), and predicts the test rows. Prints one JSON object: each step's seconds
and the peak resident memory.

Usage: python3 pipeline.py CSV LABEL TEST_FRACTION SEED
"""

import json
import resource
import sys
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


def main():
    path, label, test_fraction, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    steps = {}
    t = time.perf_counter()
    frame = pd.read_csv(path)
    steps["read_csv"] = time.perf_counter() - t

    t = time.perf_counter()
    y = frame.pop(label).to_numpy()
    x = frame.to_numpy(dtype=np.float64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed)
    steps["split"] = time.perf_counter() - t

    t = time.perf_counter()
    scaler = StandardScaler().fit(x_train)
    x_train = scaler.transform(x_train)
    x_test = scaler.transform(x_test)
    steps["scale"] = time.perf_counter() - t

    fits = {}
    for solver in ["lbfgs", "newton-cholesky"]:
        t = time.perf_counter()
        model = LogisticRegression(C=np.inf, solver=solver, max_iter=1000).fit(x_train, y_train)
        fits[solver] = time.perf_counter() - t
    steps["fit_lbfgs"] = fits["lbfgs"]
    steps["fit_newton_cholesky"] = fits["newton-cholesky"]

    t = time.perf_counter()
    p = model.predict_proba(x_test)[:, 1]
    steps["predict_test"] = time.perf_counter() - t

    # The whole work with scikit-learn's default solver (the newton-cholesky fit is extra).
    total = sum(v for k, v in steps.items() if k != "fit_newton_cholesky")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "steps_s": steps,
        "total_s": total,
        "peak_rss_bytes": peak_kib * 1024,
        "rows": int(len(y)),
        "test_rows": int(len(y_test)),
        "mean_test_probability": float(p.mean()),
        "pandas": pd.__version__,
        "sklearn": __import__("sklearn").__version__,
    }))


if __name__ == "__main__":
    main()
