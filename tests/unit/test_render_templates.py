"""The template contract is checked on load: each broken set is refused with a clear reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloscale.render.contract import load_directory_templates, load_templates
from sloscale.render.templates import DEPLOYMENT, SERVICE, TemplateError, package_sources

SHIPPED = package_sources()


def broken(name: str, text: str) -> dict[str, str]:
    return {**SHIPPED, name: text}


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ({SERVICE: SHIPPED[SERVICE]}, "missing required template(s) deployment.yaml.j2"),
        (broken(SERVICE, "kind: {{ name | tojson "), "service.yaml.j2:1:"),
        (broken(SERVICE, "- just\n- a list\n"), "must render one mapping"),
        (broken(SERVICE, "kind: Service\nmetadata: {name: x, namespace: x}\n"), "lacks apiVersion"),
        (broken(SERVICE, SHIPPED[SERVICE].replace("namespace: {{ namespace | tojson }}",
                                                  'namespace: "kube-system"')),
         "metadata.namespace must be the InferenceService's"),
        (broken(SERVICE, SHIPPED[SERVICE].replace("{{ name | tojson }}", "{{ nmae | tojson }}")),
         "'nmae' is undefined"),
        (broken(DEPLOYMENT, SHIPPED[DEPLOYMENT].replace("image: {{ image | tojson }}",
                                                        "image: {{ image }}")),
         "pass every value through `| tojson`"),
        (broken(DEPLOYMENT, SHIPPED[DEPLOYMENT].replace("kind: Deployment", "kind: StatefulSet")),
         "must render a Deployment"),
        (broken(DEPLOYMENT, SHIPPED[DEPLOYMENT].replace(
            "    metadata:\n      labels: {{ pod_labels | tojson }}",
            "    metadata:\n      labels: {}")),
         "pod labels must include"),
        (broken(SERVICE, "{{ ''.__class__.__mro__ }}"), "unsafe"),
    ],
)
def test_broken_template_sets_are_refused(sources: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        load_templates(sources, "user")
    assert message in str(caught.value)


def test_directory_with_an_extra_template_renders_it(tmp_path: Path) -> None:
    for name, text in SHIPPED.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "networkpolicy.yaml.j2").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: {{ name | tojson }}, namespace: {{ namespace | tojson }}}\n"
        "spec: {podSelector: {matchLabels: {{ selector | tojson }}}}\n")
    templates = load_directory_templates(tmp_path)
    assert "networkpolicy.yaml.j2" in templates.names


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does-not-exist: template directory"):
        load_directory_templates(tmp_path / "does-not-exist")
