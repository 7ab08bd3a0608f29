"""What `kubectl apply -k FOLDER` would apply: the kustomize build of deploy/'s folders, offline.

kubectl builds a kustomization with the kustomize it embeds, but none that can build ours installs
from PyPI or Debian (Debian's kubernetes-client is kubectl 1.20, whose kustomize v2 has neither
`labels` nor per-generator options). So the tests build it here, following kustomize's sources
(sigs.k8s.io/kustomize/api, v5) for the fields deploy/ uses, and compare the result with
`kubectl kustomize` where a kubectl is installed (tests/test_k8s.py). A field not modelled here
fails the build: nothing in a kustomization is silently left out.
"""

import copy
import hashlib
import json
from pathlib import Path

import yaml

FIELDS = {
    "apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator", "patches",
    "images",
}  # fmt: skip
# Kinds without a namespace (of those a kustomization here might hold).
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole",
                  "ClusterRoleBinding", "CustomResourceDefinition"}  # fmt: skip
# Where `labels: includeTemplates` also labels pods (builtinpluginconsts/metadatalabels.go; a
# CronJob's are a level deeper, under its jobTemplate, which is labelled too).
TEMPLATE_KINDS = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job"}
# A generated ConfigMap's name still to get its content hash (kustomize marks them likewise).
NEEDS_HASH = "needs-hash-suffix"


class KustomizeError(Exception):
    """The build fails, as `kubectl kustomize` would (or on a field not modelled here)."""


def load_yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization(folder: Path) -> dict:
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{folder} has no kustomization.yaml")
    spec = yaml.safe_load(path.read_text())
    unknown = set(spec) - FIELDS
    if unknown:
        raise KustomizeError(f"{path}: {sorted(unknown)} not modelled by this build")
    if (spec.get("apiVersion"), spec.get("kind")) != (
        "kustomize.config.k8s.io/v1beta1",
        "Kustomization",
    ):
        raise KustomizeError(f"{path}: not a kustomize.config.k8s.io/v1beta1 Kustomization")
    return spec


def file_in(folder: Path, name: str) -> Path:
    """A file the kustomization reads. kustomize's default load restrictor (RootOnly) refuses any
    outside the kustomization's folder, symbolic links resolved."""
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise KustomizeError(f"security; file '{path}' is not in or below '{folder.resolve()}'")
    if not path.is_file():
        raise KustomizeError(f"{folder / name}: no such file")
    return path


def build(folder: Path) -> list[dict]:
    """The objects `kubectl kustomize folder` prints (in no particular order)."""
    objects = accumulate(folder)
    add_hash_suffixes(objects)
    return objects


def accumulate(folder: Path) -> list[dict]:
    """One kustomization's objects, generated ConfigMaps still without their hash suffix."""
    spec = kustomization(folder)
    objects: list[dict] = []
    for entry in spec.get("resources", []):
        if (folder / entry).is_dir():  # another kustomization (kustomize allows it outside)
            objects += accumulate(folder / entry)
        else:
            objects += load_yaml_documents(file_in(folder, entry))
    for generator in spec.get("configMapGenerator", []):
        generate_config_map(folder, generator, objects)
    for patch in spec.get("patches", []):
        apply_patch(folder, patch, objects)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    for label in spec.get("labels", []):
        add_labels(label, objects)
    for image in spec.get("images", []):
        set_image(image, objects)
    return objects


def generate_config_map(folder: Path, generator: dict, objects: list[dict]) -> None:
    unknown = set(generator) - {"name", "files", "behavior", "options"}
    if unknown or set(generator.get("options", {})) - {"disableNameSuffixHash"}:
        raise KustomizeError(f"configMapGenerator {generator}: fields not modelled")
    data = {}
    for source in generator["files"]:
        key, _, name = source.rpartition("=")
        path = file_in(folder, name)
        data[key or path.name] = path.read_text()
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"]},
        "data": data,
    }
    if not generator.get("options", {}).get("disableNameSuffixHash"):
        config_map["metadata"]["annotations"] = {NEEDS_HASH: "true"}
    behavior = generator.get("behavior", "create")
    existing = [o for o in objects if (o["kind"], name_of(o)) == ("ConfigMap", generator["name"])]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"ConfigMap {generator['name']} exists already; use behavior")
        objects.append(config_map)
    elif behavior == "replace":
        if len(existing) != 1:
            raise KustomizeError(f"no ConfigMap {generator['name']} to replace")
        # The base's metadata (namespace, labels) stays; data and the hash choice are replaced.
        existing[0]["data"] = data
        annotations = existing[0]["metadata"].setdefault("annotations", {})
        annotations.pop(NEEDS_HASH, None)
        annotations.update(config_map["metadata"].get("annotations", {}))
        if not annotations:
            del existing[0]["metadata"]["annotations"]
    else:
        raise KustomizeError(f"configMapGenerator behavior {behavior!r} not modelled")


def name_of(obj: dict) -> str:
    return obj["metadata"]["name"]


# --- patches: JSON 6902 on a target, or a strategic-merge `$patch: delete` ---------------------


def apply_patch(folder: Path, entry: dict, objects: list[dict]) -> None:
    if set(entry) - {"path", "patch", "target"}:
        raise KustomizeError(f"patch {entry}: fields not modelled")
    text = file_in(folder, entry["path"]).read_text() if "path" in entry else entry["patch"]
    patch = yaml.safe_load(text)
    if isinstance(patch, list):  # JSON 6902: needs a target
        target = entry.get("target") or {}
        if not target or set(target) - {"kind", "name"}:
            raise KustomizeError(f"JSON patch target {target}: only kind and name are modelled")
        matched = [o for o in objects if all(
            (o["kind"] if key == "kind" else name_of(o)) == value for key, value in target.items()
        )]  # fmt: skip
        if not matched:
            raise KustomizeError(f"no resource matches the patch target {target}")
        for obj in matched:
            for operation in patch:
                json_patch_operation(obj, operation)
    elif patch.get("$patch") == "delete" and "target" not in entry:
        key = (patch["kind"], patch["metadata"]["name"])
        matched = [o for o in objects if (o["kind"], name_of(o)) == key]
        if not matched:
            raise KustomizeError(f"no {key} to delete")
        objects[:] = [o for o in objects if o not in matched]
    else:
        raise KustomizeError("strategic-merge patches other than `$patch: delete` not modelled")


def json_pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r} does not start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def json_patch_operation(obj: dict, operation: dict) -> None:
    """One RFC 6902 operation (add, remove, replace, test) on obj, in place."""
    op = operation["op"]
    *parents, key = json_pointer(operation["path"])
    container = obj
    try:
        for part in parents:
            container = container[int(part) if isinstance(container, list) else part]
        if isinstance(container, list):
            index = len(container) if key == "-" and op == "add" else int(key)
            if op != "add" and not 0 <= index < len(container):
                raise IndexError(index)
        else:
            index = key
            if op in ("remove", "replace", "test") and key not in container:
                raise KeyError(key)
    except (KeyError, IndexError, ValueError, TypeError) as error:
        raise KustomizeError(f"{op} {operation['path']}: no such path ({error})") from None
    if op == "test":
        if container[index] != operation["value"]:
            raise KustomizeError(
                f"testing value {operation['path']} failed: {container[index]!r} is not "
                f"{operation['value']!r}"
            )
    elif op == "remove":
        del container[index]
    elif op == "replace":
        container[index] = copy.deepcopy(operation["value"])
    elif op == "add":
        if isinstance(container, list):
            container.insert(index, copy.deepcopy(operation["value"]))
        else:
            container[index] = copy.deepcopy(operation["value"])
    else:
        raise KustomizeError(f"JSON patch op {op!r} not modelled")


# --- labels, images ---------------------------------------------------------------------------


def add_labels(label: dict, objects: list[dict]) -> None:
    if set(label) - {"pairs", "includeSelectors", "includeTemplates"}:
        raise KustomizeError(f"labels {label}: fields not modelled")
    if label.get("includeSelectors"):
        raise KustomizeError("labels with includeSelectors not modelled")
    for obj in objects:
        targets = [obj["metadata"]]
        if label.get("includeTemplates") and obj["kind"] in TEMPLATE_KINDS:
            targets.append(obj["spec"]["template"].setdefault("metadata", {}))
        if label.get("includeTemplates") and obj["kind"] == "CronJob":  # its Jobs and their pods
            job = obj["spec"]["jobTemplate"]
            targets.append(job.setdefault("metadata", {}))
            targets.append(job["spec"]["template"].setdefault("metadata", {}))
        if label.get("includeTemplates") and obj["kind"] == "StatefulSet":
            # kustomize v5.0 to v5.7 (the kubectl releases' own) label claim templates too.
            for claim in obj["spec"].get("volumeClaimTemplates", []):
                targets.append(claim.setdefault("metadata", {}))
        for metadata in targets:
            metadata.setdefault("labels", {}).update(label["pairs"])


def pod_specs(obj: dict) -> list[dict]:
    if obj["kind"] in TEMPLATE_KINDS:
        return [obj["spec"]["template"]["spec"]]
    if obj["kind"] == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return [obj["spec"]] if obj["kind"] == "Pod" else []


def containers(obj: dict) -> list[dict]:
    return [c for spec in pod_specs(obj) for key in ("initContainers", "containers")
            for c in spec.get(key, [])]  # fmt: skip


def split_image(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) of name[:tag][@digest]; a registry's :port is part of the name."""
    rest, _, digest = image.partition("@")
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        name, tag = rest, ""
    return name, tag, digest


def set_image(entry: dict, objects: list[dict]) -> None:
    if set(entry) - {"name", "newName", "newTag", "digest"}:
        raise KustomizeError(f"images {entry}: fields not modelled")
    for container in (c for obj in objects for c in containers(obj)):
        name, tag, digest = split_image(container["image"])
        if name != entry["name"]:
            continue
        name = entry.get("newName", name)
        if "digest" in entry:
            tag, digest = "", entry["digest"]
        elif "newTag" in entry:
            tag, digest = entry["newTag"], ""
        container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


# --- generated names: content hash suffix, and every reference to it --------------------------


def config_map_hash(config_map: dict) -> str:
    """kustomize's hasher.Hash for a ConfigMap: sha256 of the JSON of kind, name and data (Go's
    json.Marshal: sorted keys, HTML characters escaped), its first 10 hex digits with 0, 1, 3, a
    and e replaced. The name is always "": kustomize looks it up as one field named
    "metadata/name" (yaml.Lookup takes no path), which no ConfigMap has."""
    encoded = {"data": config_map.get("data") or "", "kind": "ConfigMap", "name": ""}
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(char, escaped)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def config_map_references(obj: dict) -> list[tuple[dict, str]]:
    """(holder, key) of each ConfigMap name a pod template refers to (namereference.go)."""
    found = []
    for spec in pod_specs(obj):
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                found.append((volume["configMap"], "name"))
            for source in volume.get("projected", {}).get("sources", []):
                if "configMap" in source:
                    found.append((source["configMap"], "name"))
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            for env in container.get("env", []):
                if "configMapKeyRef" in env.get("valueFrom", {}):
                    found.append((env["valueFrom"]["configMapKeyRef"], "name"))
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    found.append((source["configMapRef"], "name"))
    return found


def add_hash_suffixes(objects: list[dict]) -> None:
    renamed = {}
    for obj in objects:
        annotations = obj["metadata"].get("annotations", {})
        if annotations.pop(NEEDS_HASH, None):
            if not annotations:
                del obj["metadata"]["annotations"]
            old = name_of(obj)
            obj["metadata"]["name"] = f"{old}-{config_map_hash(obj)}"
            renamed[(obj["metadata"].get("namespace"), old)] = name_of(obj)
    for obj in objects:
        for holder, key in config_map_references(obj):
            holder[key] = renamed.get((obj["metadata"].get("namespace"), holder[key]), holder[key])
