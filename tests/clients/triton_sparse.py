"""Asks a running logitflow serve, with NVIDIA's tritonclient, for a model with a text column of
thousands of levels (held as sparse terms) as a new user would: the metadata, then three rows
(an FP64 tensor per numeric feature, a BYTES tensor for the text one) over HTTP with binary
tensors (its default), over HTTP as JSON and over gRPC; then a row with a level training never
saw, which must be refused naming it. Prints what it got as one JSON object. Run by
tests/triton.rs: `python triton_sparse.py HOST:PORT GRPC_HOST:PORT MODEL ROWS_JSON`.
"""
import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, grpc_url, model, rows = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])


def inputs(module, metadata, rows, **kw):
    out = []
    for j, spec in enumerate(metadata["inputs"]):
        tensor = module.InferInput(spec["name"], [len(rows), 1], spec["datatype"])
        if spec["datatype"] == "BYTES":
            tensor.set_data_from_numpy(np.array([[row[j]] for row in rows], dtype=np.object_), **kw)
        else:
            tensor.set_data_from_numpy(np.array([[row[j]] for row in rows], dtype=np.float64), **kw)
        out.append(tensor)
    return out


http = httpclient.InferenceServerClient(url=url)
metadata = http.get_model_metadata(model)
out = {"inputs": [{"name": i["name"], "datatype": i["datatype"]} for i in metadata["inputs"]]}
out["http_binary"] = http.infer(model, inputs(httpclient, metadata, rows)).as_numpy("probability").ravel().tolist()
json_inputs = inputs(httpclient, metadata, rows, binary_data=False)
out["http_json"] = http.infer(model, json_inputs).as_numpy("probability").ravel().tolist()
grpc = grpcclient.InferenceServerClient(url=grpc_url)
grpc_metadata = grpc.get_model_metadata(model, as_json=True)
out["grpc"] = grpc.infer(model, inputs(grpcclient, grpc_metadata, rows)).as_numpy("probability").ravel().tolist()
unseen = [rows[0][:-1] + ["no-such-shop"]]
try:
    http.infer(model, inputs(httpclient, metadata, unseen))
    out["unseen"] = None
except InferenceServerException as e:
    out["unseen"] = {"status": e.status(), "message": e.message()}
print(json.dumps(out))
