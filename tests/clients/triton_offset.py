"""Asks a running logitflow serve, with NVIDIA's tritonclient, for a model with an offset, as a
new user would: the metadata's inputs, a row with every input (the offset among them) as one
FP64 tensor each, and the same row without the offset, which must be refused naming it. Prints
what it got as one JSON object. Run by tests/triton.rs: `python triton_offset.py HOST:PORT MODEL`.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, model = sys.argv[1], sys.argv[2]
row = {"GPA": 3.1, "TUCE": 24.0, "PSI": 1.0, "o": 0.4}
client = httpclient.InferenceServerClient(url=url)
metadata = client.get_model_metadata(model)
names = [i["name"] for i in metadata["inputs"]]


def tensors(names):
    out = []
    for name in names:
        tensor = httpclient.InferInput(name, [1], "FP64")
        tensor.set_data_from_numpy(np.array([row[name]], dtype=np.float64))
        out.append(tensor)
    return out


probability = float(client.infer(model, tensors(names)).as_numpy("probability").ravel()[0])
try:
    client.infer(model, tensors([n for n in names if n != "o"]))
    refused = None
except InferenceServerException as e:
    refused = {"status": e.status(), "message": e.message()}
print(json.dumps({"inputs": names, "offset": metadata.get("offset"), "probability": probability, "without_offset": refused}))
