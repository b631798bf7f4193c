"""The Python peer of `logitflow-bench batch --vs-python`: the same scoring in one process.

Reads the CSV with pandas, scores it with scikit-learn's `predict_proba` for the model that
`bench batch` serves (one feature, `score`: intercept and coefficient given), and writes the
CSV back with a `probability` column, as batch answers. Prints one JSON object: each step's
seconds and the peak resident memory.

Usage: python3 batch.py CSV INTERCEPT COEFFICIENT
"""

import io
import json
import resource
import sys
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


def main():
    path, intercept, coefficient = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    body = open(path, "rb").read()
    model = LogisticRegression()
    model.classes_ = np.array([0, 1])
    model.coef_ = np.array([[coefficient]])
    model.intercept_ = np.array([intercept])
    model.n_features_in_ = 1
    steps = {}
    t = time.perf_counter()
    frame = pd.read_csv(io.BytesIO(body))
    steps["read_csv"] = time.perf_counter() - t
    t = time.perf_counter()
    frame["probability"] = model.predict_proba(frame[["score"]].to_numpy())[:, 1]
    steps["predict_proba"] = time.perf_counter() - t
    t = time.perf_counter()
    out = io.StringIO()
    frame.to_csv(out, index=False)
    steps["to_csv"] = time.perf_counter() - t
    print(json.dumps({
        "steps_s": steps,
        "total_s": sum(steps.values()),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rows": int(len(frame)),
        "answer_bytes": len(out.getvalue()),
        "pandas": pd.__version__,
        "sklearn": __import__("sklearn").__version__,
    }))


if __name__ == "__main__":
    main()
