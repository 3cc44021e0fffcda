"""deploy/kuberay/: every manifest validates, the KubeRay resources against KubeRay's own CRD
schemas (tests/resources/kuberay) and the core objects - and the pod templates inside the
KubeRay resources - against Kubernetes' schemas (kubernetes-validate, offline).

CRD schemas leave unknown fields to the API server, which silently prunes them; `crd_errors`
therefore also rejects every field the schema does not declare, so a misspelt field fails here
instead of vanishing on the cluster.
"""
from __future__ import annotations

import copy
import functools
import gzip
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "deploy" / "kuberay"
CRDS = REPO / "tests" / "resources" / "kuberay"
K8S_VERSION = "1.33"


@functools.lru_cache(maxsize=None)
def crd_schema(kind: str) -> dict:
    crd = yaml.load(gzip.decompress((CRDS / f"ray.io_{kind.lower()}s.yaml.gz").read_bytes()), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd["spec"]["names"]["kind"] == kind
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return v1["schema"]["openAPIV3Schema"]


def undeclared_fields(obj, schema: dict, path: str = "") -> list[str]:
    """Fields of `obj` that `schema` does not declare (what the API server would prune)."""
    out = []
    if isinstance(obj, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            for key, value in obj.items():
                if key in props:
                    out += undeclared_fields(value, props[key], f"{path}.{key}")
                elif not extra:
                    out.append(f"{path}.{key}")
        elif isinstance(extra, dict):
            for key, value in obj.items():
                out += undeclared_fields(value, extra, f"{path}.{key}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(obj):
            out += undeclared_fields(value, schema["items"], f"{path}[{i}]")
    return out


def crd_errors(doc: dict) -> list[str]:
    schema = crd_schema(doc["kind"])
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft4Validator(schema).iter_errors(doc)]
    body = {k: v for k, v in doc.items() if k != "metadata"}  # metadata: ObjectMeta, checked by the API server
    return errors + [f"undeclared field {p}" for p in undeclared_fields(body, {**schema, "properties": {
        k: v for k, v in schema["properties"].items() if k != "metadata"}})]


def pod_templates(doc: dict) -> list[dict]:
    """Every pod template inside a RayCluster or RayJob."""
    spec = doc["spec"]
    cluster = spec.get("rayClusterSpec", spec) if doc["kind"] == "RayJob" else spec
    out = [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]
    if "submitterPodTemplate" in spec:
        out.append(spec["submitterPodTemplate"])
    return out


def as_pod(template: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t", **template.get("metadata", {})},
            "spec": template["spec"]}


def manifests() -> list[tuple[str, dict]]:
    return [(f"{path.name}#{i}", doc) for path in sorted(KUBERAY.glob("*.yaml"))
            for i, doc in enumerate(yaml.safe_load_all(path.read_text())) if doc]


def test_the_expected_manifests_are_there():
    kinds = sorted(doc["kind"] for _, doc in manifests())
    assert kinds == ["Deployment", "Job", "PersistentVolumeClaim", "PersistentVolumeClaim", "RayCluster",
                     "RayJob", "Secret", "Service"]


@pytest.mark.parametrize("name,doc", [m for m in manifests() if m[1]["apiVersion"] == "ray.io/v1"],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_kuberay_resources_validate_against_the_crds(name, doc):
    assert crd_errors(doc) == []
    for template in pod_templates(doc):
        kubernetes_validate.validate(as_pod(template), K8S_VERSION, strict=True)


@pytest.mark.parametrize("name,doc", [m for m in manifests() if m[1]["apiVersion"] != "ray.io/v1"],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_core_objects_validate_against_kubernetes(name, doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validation_catches_mistakes():
    doc = dict(manifests())["raycluster.yaml#0"]
    typo = copy.deepcopy(doc)
    typo["spec"]["workerGroupSpecs"][0]["maxReplica"] = 4
    assert crd_errors(typo) == ["undeclared field .spec.workerGroupSpecs[0].maxReplica"]
    wrong_type = copy.deepcopy(doc)
    wrong_type["spec"]["workerGroupSpecs"][0]["replicas"] = "one"
    assert any("replicas" in e for e in crd_errors(wrong_type))
    bad_pod = copy.deepcopy(pod_templates(doc)[1])
    bad_pod["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(as_pod(bad_pod), K8S_VERSION, strict=True)


def test_cluster_wiring():
    """GPU workers ask for GPUs with NVDEC/NVENC capability, every Ray pod shares /data and
    /models and token auth, and the gateway joins the cluster's head service."""
    docs = dict(manifests())
    cluster = docs["raycluster.yaml#0"]
    worker = cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    for doc in (cluster, docs["rayjob.yaml#0"]):
        for template in pod_templates(doc):
            c = template["spec"]["containers"][0]
            env = {e["name"]: e for e in c.get("env", [])}
            assert env["RAY_AUTH_MODE"]["value"] == "token"
            assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "vdp-ray-token"
            if c["name"] != "ray-job-submitter":
                assert "video" in env["NVIDIA_DRIVER_CAPABILITIES"]["value"]
                claims = {v["persistentVolumeClaim"]["claimName"] for v in template["spec"]["volumes"]
                          if "persistentVolumeClaim" in v}
                assert claims == {"vdp-data", "vdp-models"}
    gateway = docs["gateway.yaml#0"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in gateway["env"]}
    assert env["RAY_ADDRESS"]["value"] == f"{cluster['metadata']['name']}-head-svc:6379"
    assert docs["rayjob.yaml#0"]["spec"]["shutdownAfterJobFinishes"] is True
    assert docs["rayjob.yaml#0"]["spec"]["entrypoint"].startswith("vdp run ")
