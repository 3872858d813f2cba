"""Strict JSON schemas for kubeconform, made offline (no download at test time).

kubeconform downloads its schemas unless given local files. Built-in kinds come from the
test cluster's own /openapi/v2 (the Kubernetes version the project pins); custom kinds from
the CRD files. Each kind gets one standalone file named as kubeconform looks it up
(`{kind}{-group-prefix}-{version}.json`), strict: objects refuse undeclared fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]
GVK = "x-kubernetes-group-version-kind"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
INT_OR_STRING: Schema = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
QUANTITY: Schema = {"anyOf": [{"type": "string"}, {"type": "number"}]}
PATH_TEMPLATE = "{{ .ResourceKind }}{{ .KindSuffix }}.json"


def file_name(kind: str, group: str, version: str) -> str:
    """What kubeconform's PATH_TEMPLATE names the schema of kind in group/version."""
    prefix = group.split(".")[0] + "-" if group else ""
    return f"{kind.lower()}-{prefix}{version}.json"


def strict(schema: Any) -> Any:
    """Kubernetes' OpenAPI as JSON schema: int-or-string and quantities typed, objects closed."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("format") == "int-or-string" or schema.get("x-kubernetes-int-or-string"):
        return {**INT_OR_STRING, "description": schema.get("description", "")}
    out: Schema = {}
    for key, value in schema.items():
        if key == "properties":  # names, not keywords: each value is a schema
            out[key] = {name: strict(prop) for name, prop in value.items()}
        elif key not in ("x-kubernetes-validations", "format"):
            out[key] = strict(value)
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if schema.get("nullable") and isinstance(schema.get("type"), str):
        out["type"] = [schema["type"], "null"]
    return out


def _references(schema: Any) -> set[str]:
    if isinstance(schema, list):
        return {name for item in schema for name in _references(item)}
    if not isinstance(schema, dict):
        return set()
    ref = schema.get("$ref")
    found = {ref.rsplit("/", 1)[-1]} if isinstance(ref, str) else set()
    return found | {name for value in schema.values() for name in _references(value)}


def _closure(definitions: dict[str, Schema], roots: set[str]) -> dict[str, Schema]:
    """The definitions reachable from `roots`, so that each file stands alone."""
    wanted, todo = {}, list(roots)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted[name] = definitions[name]
        todo += sorted(_references(definitions[name]) - set(wanted))
    return wanted


def _definitions(openapi_v2: dict[str, Any]) -> dict[str, Schema]:
    definitions = {name: strict(schema) for name, schema in openapi_v2["definitions"].items()}
    definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] = QUANTITY
    return definitions


def builtin_schemas(openapi_v2: dict[str, Any]) -> dict[str, Schema]:
    """File name -> standalone schema for every kind the apiserver serves."""
    definitions = _definitions(openapi_v2)
    files = {}
    for name, schema in openapi_v2["definitions"].items():
        for gvk in schema.get(GVK, []):
            standalone = {
                **definitions[name],
                "definitions": _closure(definitions, _references(definitions[name])),
            }
            files[file_name(gvk["kind"], gvk["group"], gvk["version"])] = standalone
    return files


def crd_schemas(crd: dict[str, Any], openapi_v2: dict[str, Any]) -> dict[str, Schema]:
    """File name -> standalone schema for each served version of a CRD."""
    definitions = _definitions(openapi_v2)
    spec = crd["spec"]
    files = {}
    for version in spec["versions"]:
        schema = strict(version["schema"]["openAPIV3Schema"])
        # The API server adds these to every kind; CRDs need not declare them.
        schema.setdefault("properties", {}).update(
            apiVersion={"type": "string"},
            kind={"type": "string"},
            metadata={"$ref": f"#/definitions/{OBJECT_META}"},
        )
        schema["definitions"] = _closure(definitions, {OBJECT_META})
        files[file_name(spec["names"]["kind"], spec["group"], version["name"])] = schema
    return files


def write_schemas(openapi_v2: dict[str, Any], crd_files: list[Path], out: Path) -> str:
    """Write every schema under `out`; returns kubeconform's -schema-location for them."""
    out.mkdir(parents=True, exist_ok=True)
    files = builtin_schemas(openapi_v2)
    for path in crd_files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                files.update(crd_schemas(doc, openapi_v2))
    for name, schema in files.items():
        (out / name).write_text(json.dumps(schema))
    return str(out / PATH_TEMPLATE)
