#!/usr/bin/env python3
"""Renders deploy/kubernetes (kustomize) and checks it offline, as CI does:

    python3 deploy/check.py          # needs PyYAML and kubernetes-validate (pip)

1. Renders the base with `kubectl kustomize` when kubectl is there, else with the small
   renderer below, which does what this base asks of kustomize (resources, labels, images) and
   nothing more; when both are there, their output must agree.
2. Validates every object against the Kubernetes schemas with `kubernetes-validate --strict`
   (unknown fields refused), offline.
3. Checks what the deployment promises: eight services, each probed on /v2/health/live and
   /v2/health/ready with requests and limits; serve at two replicas or more behind a
   HorizontalPodAutoscaler; train one replica; ingest a StatefulSet with its volume; the
   token and S3 keys from the Secret, the store URI from the ConfigMap.
Exits 1 with what is wrong.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import yaml

BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kubernetes")
SERVICES = ["ingest", "preprocess", "features", "train", "evaluate", "serve", "advisor", "batch"]


def render_here(base):
    """kustomize's resources, labels (metadata only) and images, for this base."""
    kustomization = yaml.safe_load(open(os.path.join(base, "kustomization.yaml")))
    known = {"apiVersion", "kind", "resources", "labels", "images"}
    unknown = set(kustomization) - known
    if unknown:
        sys.exit(f"the fallback renderer does not know {sorted(unknown)}: render with kubectl kustomize")
    objects = []
    for resource in kustomization["resources"]:
        objects += [o for o in yaml.safe_load_all(open(os.path.join(base, resource))) if o]
    for group in kustomization.get("labels", []):
        for o in objects:
            o.setdefault("metadata", {}).setdefault("labels", {}).update(group["pairs"])
    images = {i["name"]: i for i in kustomization.get("images", [])}
    for o in objects:
        for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            if c.get("image") in images:
                new = images[c["image"]]
                c["image"] = f'{new.get("newName", c["image"])}:{new["newTag"]}' if "newTag" in new else new.get("newName", c["image"])
    return objects


def canonical(objects):
    return sorted(yaml.safe_dump(o, sort_keys=True) for o in objects)


def main():
    problems = []
    objects = render_here(BASE)
    if shutil.which("kubectl"):
        rendered = subprocess.run(["kubectl", "kustomize", BASE], capture_output=True, text=True)
        if rendered.returncode != 0:
            sys.exit(f"kubectl kustomize failed:\n{rendered.stderr}")
        by_kubectl = [o for o in yaml.safe_load_all(rendered.stdout) if o]
        if canonical(by_kubectl) != canonical(objects):
            problems.append("kubectl kustomize and the fallback renderer disagree")
        objects = by_kubectl
        print(f"rendered with kubectl kustomize ({len(objects)} objects; the fallback renderer agrees)")
    else:
        print(f"rendered with the fallback renderer ({len(objects)} objects; kubectl is not installed)")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as out:
        yaml.safe_dump_all(objects, out)
    validate = shutil.which("kubernetes-validate") or os.path.join(os.path.dirname(sys.executable), "kubernetes-validate")
    checked = subprocess.run([validate, "--strict", "--quiet", out.name], capture_output=True, text=True)
    os.unlink(out.name)
    if checked.returncode != 0:
        problems.append(f"kubernetes-validate --strict:\n{checked.stdout}{checked.stderr}")
    else:
        print("kubernetes-validate --strict: every object valid")

    by_kind = {}
    for o in objects:
        by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    workloads = {**by_kind.get("Deployment", {}), **by_kind.get("StatefulSet", {})}
    if sorted(workloads) != sorted(SERVICES):
        problems.append(f"workloads {sorted(workloads)}, not the eight services")
    if sorted(n for n in by_kind.get("Service", {}) if n in SERVICES) != sorted(SERVICES):
        problems.append("a service has no Service")
    config = by_kind.get("ConfigMap", {}).get("logitflow-config", {}).get("data", {})
    if not config.get("LOGITFLOW_STORE", "").startswith("s3://"):
        problems.append("the ConfigMap names no s3:// store")
    secret = by_kind.get("Secret", {}).get("logitflow-secrets", {}).get("stringData", {})
    for key in ["LOGITFLOW_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]:
        if key not in secret:
            problems.append(f"the Secret holds no {key}")
    for name, w in workloads.items():
        pod = w["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        if c.get("args", [None])[0] != name:
            problems.append(f"{name} runs `logitflow service {c.get('args')}`")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/v2/health/live":
            problems.append(f"{name}: no liveness probe on /v2/health/live")
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/v2/health/ready":
            problems.append(f"{name}: no readiness probe on /v2/health/ready")
        if not {"requests", "limits"} <= set(c.get("resources", {})):
            problems.append(f"{name}: no resource requests and limits")
        refs = [(e.get("configMapRef") or {}).get("name") or (e.get("secretRef") or {}).get("name") for e in c.get("envFrom", [])]
        if refs != ["logitflow-config", "logitflow-secrets"]:
            problems.append(f"{name}: not told the ConfigMap and the Secret ({refs})")
    if by_kind.get("Deployment", {}).get("serve", {}).get("spec", {}).get("replicas", 0) < 2:
        problems.append("serve has fewer than 2 replicas")
    hpa = by_kind.get("HorizontalPodAutoscaler", {}).get("serve", {}).get("spec", {})
    if hpa.get("scaleTargetRef", {}).get("name") != "serve" or hpa.get("minReplicas", 0) < 2:
        problems.append("no HorizontalPodAutoscaler for serve from 2 replicas")
    if by_kind.get("Deployment", {}).get("train", {}).get("spec", {}).get("replicas") != 1:
        problems.append("train is not one replica")
    ingest = by_kind.get("StatefulSet", {}).get("ingest", {}).get("spec", {})
    if not ingest.get("volumeClaimTemplates"):
        problems.append("ingest is not a StatefulSet with its volume")
    if problems:
        print("\n".join(f"PROBLEM: {p}" for p in problems))
        sys.exit(1)
    print("the deployment keeps its promises: 8 services probed and bounded, serve 2+ with an HPA, train 1, ingest a StatefulSet")


if __name__ == "__main__":
    main()
