"""Drives a running logitflow serve's gRPC port with tritonclient.grpc, with its defaults, and
prints what it got as one JSON object. Run by tests/triton.rs: `python triton_grpc.py HOST:PORT`.
"""
import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient

client = grpcclient.InferenceServerClient(url=sys.argv[1])
results = {
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready("admissions"),
    "metadata_inputs": [i.name for i in client.get_model_metadata("admissions").inputs],
}
score = grpcclient.InferInput("score", [1, 1], "FP64")
score.set_data_from_numpy(np.array([[80.0]], dtype=np.float64))
result = client.infer("admissions", [score], request_id="g1")
response = result.get_response()
results["infer"] = {
    "probability": float(result.as_numpy("probability").ravel()[0]),
    "model_version": response.model_version,
    "id": response.id,
}
print(json.dumps(results))
