"""Asks a running logitflow serve, with NVIDIA's tritonclient, for a K-class model's answers as
a new user would: the metadata, then five rows (one FP64 tensor per feature) over HTTP with
binary outputs (its default), over HTTP as JSON, and over gRPC, each asking for `probability`
and `label`; then Triton's classification extension (`class_count=2`) over HTTP and gRPC.
Prints what it got as one JSON object. Run by tests/triton.rs:
`python triton_classes.py HOST:PORT GRPC_HOST:PORT MODEL`.
"""
import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

url, grpc_url, model = sys.argv[1], sys.argv[2], sys.argv[3]
rows = np.array([[39.1, 18.7, 181, 3750], [46.5, 17.9, 192, 3500], [50.0, 15.2, 218, 5700],
                 [45.2, 16.4, 223, 5950], [49.5, 19.0, 200, 3800]], dtype=np.float64)


def inputs(module, names):
    out = []
    for j, name in enumerate(names):
        tensor = module.InferInput(name, [len(rows), 1], "FP64")
        tensor.set_data_from_numpy(rows[:, j:j + 1].copy())
        out.append(tensor)
    return out


def answers(result):
    return {"probability": result.as_numpy("probability").tolist(),
            "label": [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").ravel()]}


http = httpclient.InferenceServerClient(url=url)
metadata = http.get_model_metadata(model)
names = [i["name"] for i in metadata["inputs"]]
wanted = lambda module, **kw: [module.InferRequestedOutput("probability", **kw), module.InferRequestedOutput("label", **kw)]
out = {"outputs": metadata["outputs"], "classes": metadata.get("classes")}
out["http_binary"] = answers(http.infer(model, inputs(httpclient, names), outputs=wanted(httpclient)))
out["http_json"] = answers(http.infer(model, inputs(httpclient, names), outputs=wanted(httpclient, binary_data=False)))
out["http_default"] = answers(http.infer(model, inputs(httpclient, names)))
grpc = grpcclient.InferenceServerClient(url=grpc_url)
out["grpc"] = answers(grpc.infer(model, inputs(grpcclient, names), outputs=wanted(grpcclient)))
top = http.infer(model, inputs(httpclient, names), outputs=[httpclient.InferRequestedOutput("probability", class_count=2)])
out["classification_http"] = [[v.decode() if isinstance(v, bytes) else v for v in row] for row in top.as_numpy("probability")]
top = grpc.infer(model, inputs(grpcclient, names), outputs=[grpcclient.InferRequestedOutput("probability", class_count=2)])
out["classification_grpc"] = [[v.decode() if isinstance(v, bytes) else v for v in row] for row in top.as_numpy("probability")]
print(json.dumps(out))
