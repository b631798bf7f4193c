"""Drives a running logitflow serve's gRPC port with tritonclient.grpc, with its defaults, then
asks for the model statistics, loads the model and lists the repository, and prints what it got
as one JSON object. Run by tests/triton.rs: `python triton_grpc.py HOST:PORT`.
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
stats = client.get_inference_statistics("admissions", as_json=True)["model_stats"]
results["statistics"] = [
    {"version": s["version"], "success": int(s["inference_stats"]["success"]["count"]), "rows": int(s["inference_count"])}
    for s in stats
]
client.load_model("admissions")
results["index"] = [(m["name"], m["version"], m["state"]) for m in client.get_model_repository_index(as_json=True)["models"]]
print(json.dumps(results))
