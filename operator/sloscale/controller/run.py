"""`sloscale run`: start the operator against the current KUBECONFIG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sloscale.render.values import DEFAULT_STORAGE_IMAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                        help="watch only this namespace (repeatable; glob patterns allowed); "
                             "default: all namespaces")
    parser.add_argument("--templates", type=Path, metavar="DIR",
                        help="directory of *.yaml.j2 child templates instead of the shipped ones")
    parser.add_argument("--templates-configmap", metavar="NS/NAME",
                        help="ConfigMap whose *.yaml.j2 keys are the child templates")
    parser.add_argument("--storage-initializer-image", default=DEFAULT_STORAGE_IMAGE,
                        help="image of the init container that fetches storageUri")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    import asyncio

    import kopf

    from sloscale.controller import handlers
    from sloscale.controller.kube import Kube
    from sloscale.controller.reconcile import Settings
    from sloscale.controller.templates import load_configured_templates
    from sloscale.render.templates import TemplateError

    kube: Kube | None = None

    def read_configmap(namespace: str, name: str) -> dict[str, str]:
        return (kube or Kube()).config_map_data(namespace, name)

    try:
        templates = load_configured_templates(args.templates, args.templates_configmap,
                                              read_configmap)
    except TemplateError as error:
        print(f"sloscale run: {error}", file=sys.stderr)
        return 2
    kube = Kube()
    handlers.Wiring.kube = kube
    handlers.Wiring.settings = Settings(templates, args.storage_initializer_image)
    kopf.configure(verbose=args.verbose)
    namespaces = list(args.namespace)
    asyncio.run(kopf.operator(clusterwide=not namespaces, namespaces=namespaces,
                              standalone=True))
    return 0
