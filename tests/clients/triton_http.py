"""Drives a running logitflow serve with NVIDIA's tritonclient, as a new user would, and prints
what it got as one JSON object. Run by tests/triton.rs: `python triton_http.py HOST:PORT`.

Each case asks for the probability of admission for a score of 80 from `admissions`:
- http_default: tritonclient.http with its defaults (the input as binary data, outputs asked
  for as binary since none are named);
- http_json: the input as JSON (binary_data=False), the output asked for as JSON;
- http_binary_output: a JSON input, the output asked for as binary;
- aio: tritonclient.http.aio with its defaults.
Then the model statistics, a load, and the repository index.
"""
import asyncio
import json
import sys

import numpy as np
import tritonclient.http as httpclient
import tritonclient.http.aio as aioclient

url = sys.argv[1]
results = {}


def inputs(binary):
    tensor = httpclient.InferInput("score", [1, 1], "FP64")
    tensor.set_data_from_numpy(np.array([[80.0]], dtype=np.float64), binary_data=binary)
    return [tensor]


def record(name, result):
    response = result.get_response()
    results[name] = {
        "probability": float(result.as_numpy("probability").ravel()[0]),
        "model_version": response.get("model_version"),
        "id": response.get("id"),
    }


client = httpclient.InferenceServerClient(url=url)
results["live"] = client.is_server_live()
results["ready"] = client.is_server_ready()
results["model_ready"] = client.is_model_ready("admissions")
results["metadata_inputs"] = [i["name"] for i in client.get_model_metadata("admissions")["inputs"]]
record("http_default", client.infer("admissions", inputs(True), request_id="r1"))
record(
    "http_json",
    client.infer("admissions", inputs(False), outputs=[httpclient.InferRequestedOutput("probability", binary_data=False)], request_id="r2"),
)
record(
    "http_binary_output",
    client.infer("admissions", inputs(False), outputs=[httpclient.InferRequestedOutput("probability", binary_data=True)], request_id="r3"),
)
record("http_version", client.infer("admissions", inputs(True), model_version="1", request_id="r4"))


async def aio():
    async_client = aioclient.InferenceServerClient(url=url)
    try:
        tensor = aioclient.InferInput("score", [1, 1], "FP64")
        tensor.set_data_from_numpy(np.array([[80.0]], dtype=np.float64))
        record("aio", await async_client.infer("admissions", [tensor], request_id="r5"))
    finally:
        await async_client.close()


asyncio.run(aio())
stats = client.get_inference_statistics("admissions")["model_stats"]
results["statistics"] = [
    {"version": s["version"], "success": s["inference_stats"]["success"]["count"], "rows": s["inference_count"]} for s in stats
]
client.load_model("admissions")
results["index"] = [(m["name"], m["version"], m["state"]) for m in client.get_model_repository_index()]
print(json.dumps(results))
