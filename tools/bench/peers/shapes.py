"""Data of the shapes issue 33 names, and scikit-learn's unpenalised fit of it, timed.

`write` makes a training and a test CSV of one shape: features of mixed scale, correlated in
pairs, a 0/1 label drawn from a logistic model whose coefficients shrink with the column's
index (so wide designs are not separated), and optionally a text column of many levels; with
`--classes K` (K ≥ 3) the label is drawn from a multinomial model instead, classes 0 to K−1.
`fit` reads the two files with pandas, one-hot codes a text column as statsmodels and R do (the
first level in sorted order as reference, sparse), standardises the columns, and times
scikit-learn's unpenalised lbfgs with its defaults, and lbfgs and newton-cholesky to a 1e-8
tolerance. It prints one JSON object: each fit's seconds, iterations and test log loss.
`logitflow-bench shapes` runs both commands.

Usage:
  python3 shapes.py write ROWS FEATURES OUT_DIR [--levels L] [--seed S] [--classes K]
  python3 shapes.py fit TRAIN_CSV TEST_CSV LABEL
"""

import json
import sys
import time

import numpy as np


def write(rows, features, out_dir, levels=0, seed=7, classes=2):
    rng = np.random.default_rng(seed)
    total = rows + rows // 4
    x = rng.standard_normal((total, features))
    # Neighbouring columns correlated, and scales from 0.01 to 100, as real columns are.
    x[:, 1:] = 0.6 * x[:, :-1] + 0.8 * x[:, 1:]
    scales = 10.0 ** rng.uniform(-2, 2, features)
    beta = rng.standard_normal(features) / np.sqrt(features) * 1.5
    z = 0.3 + x @ beta
    columns = [x * scales]
    names = [f"x{j}" for j in range(features)]
    if levels:
        codes = rng.integers(0, levels, total)
        effects = rng.standard_normal(levels) * 0.5
        z = z + effects[codes]
    y = (rng.random(total) < 1.0 / (1.0 + np.exp(-z))).astype(int)
    if classes > 2:
        # One linear predictor per class (the first the reference), a class drawn from their
        # softmax: overlapping classes, as the 0/1 label's are.
        betas = rng.standard_normal((features, classes)) / np.sqrt(features) * 1.5
        betas[:, 0] = 0.0
        logits = x @ betas
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        y = np.minimum((rng.random(total)[:, None] > p.cumsum(axis=1)).sum(axis=1), classes - 1)
    import os

    os.makedirs(out_dir, exist_ok=True)
    for part, sl in (("train", slice(0, rows)), ("test", slice(rows, total))):
        path = os.path.join(out_dir, f"{part}.csv")
        with open(path, "w") as f:
            header = names + (["shop"] if levels else []) + ["y"]
            f.write(",".join(header) + "\n")
            block = columns[0][sl]
            text = None
            if levels:
                text = np.char.add("s", codes[sl].astype(str))
            for start in range(0, block.shape[0], 10000):
                chunk = block[start : start + 10000]
                lines = [",".join(f"{v:.17g}" for v in row) for row in chunk]
                for i, line in enumerate(lines):
                    r = start + i
                    cells = [line]
                    if text is not None:
                        cells.append(str(text[r]))
                    cells.append(str(y[sl][r]))
                    f.write(",".join(cells) + "\n")
        print(path)


def design(frame, label, levels_of=None):
    import pandas as pd
    import scipy.sparse as sp

    y = frame.pop(label).to_numpy()
    # Text columns, whichever dtype pandas gives them (object, or its own string type).
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    numeric = frame.drop(columns=text).to_numpy(dtype=np.float64)
    if not text:
        return numeric, y, None
    blocks = [sp.csr_matrix(numeric)]
    levels_of = levels_of or {c: sorted(frame[c].unique()) for c in text}
    for c in text:
        cat = pd.Categorical(frame[c], categories=levels_of[c])
        codes = cat.codes
        rows = np.nonzero(codes > 0)[0]
        blocks.append(sp.csr_matrix((np.ones(len(rows)), (rows, codes[rows] - 1)), shape=(len(frame), len(levels_of[c]) - 1)))
    return sp.hstack(blocks, format="csr"), y, levels_of


def fit(train_csv, test_csv, label):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    x, y, levels = design(pd.read_csv(train_csv), label)
    xt, yt, _ = design(pd.read_csv(test_csv), label, levels)
    # Standardised as logitflow's features stage does (sparse columns are scaled, not centred).
    scaler = StandardScaler(with_mean=not hasattr(x, "tocsr")).fit(x)
    x, xt = scaler.transform(x), scaler.transform(xt)
    import sklearn

    out = {"sklearn": sklearn.__version__}
    # lbfgs as a user calls it (its defaults: tol 1e-4, at most 100 iterations), and lbfgs and
    # newton-cholesky driven to the optimum, whose test log loss is the reference.
    fits = (
        ("lbfgs_default", "lbfgs", {}),
        ("lbfgs", "lbfgs", {"max_iter": 10000, "tol": 1e-8}),
        ("newton-cholesky", "newton-cholesky", {"max_iter": 10000, "tol": 1e-8}),
    )
    # Two classes: the positive class's probability; K: every class's (multinomial fits).
    proba = (lambda m, x: m.predict_proba(x)) if len(np.unique(y)) > 2 else (lambda m, x: m.predict_proba(x)[:, 1])
    for name, solver, options in fits:
        t = time.perf_counter()
        model = LogisticRegression(penalty=None, solver=solver, **options).fit(x, y)
        seconds = time.perf_counter() - t
        out[name] = {
            "seconds": seconds,
            "iterations": int(model.n_iter_[0]),
            "test_log_loss": log_loss(yt, proba(model, xt)),
            "train_log_loss": log_loss(y, proba(model, x)),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        args = sys.argv[2:]
        levels = int(args[args.index("--levels") + 1]) if "--levels" in args else 0
        seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 7
        classes = int(args[args.index("--classes") + 1]) if "--classes" in args else 2
        write(int(args[0]), int(args[1]), args[2], levels, seed, classes)
    elif sys.argv[1] == "fit":
        fit(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
