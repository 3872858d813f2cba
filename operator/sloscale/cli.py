"""`sloscale` command line: one subcommand per module, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import re
import sys

# name -> module that defines `add_arguments(parser)` and `run(args) -> int`.
# Modules are imported lazily so that `sloscale simulate` never loads kopf or torch.
COMMANDS: dict[str, tuple[str, str]] = {
    "backtest": ("sloscale.backtest_cmd", "replay a Prometheus range through a policy (recommend)"),
    "run": ("sloscale.controller.run", "run the operator against the current KUBECONFIG"),
    "simulate": ("sloscale.simulate_cmd", "replay a request trace under autoscaling policies"),
    "runtime": ("sloscale_runtime.cli", "build, serve and profile Triton model repositories"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Every command is listed; only the one named in `argv` is imported and configured."""
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="sloscale", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in sorted(COMMANDS.items()):
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(command)
            command.set_defaults(_module=module)
    return parser


def extra_providing(module: str) -> str | None:
    """The optional-dependency group of the installed sloscale that provides `module`.

    `pip install sloscale` carries what the operator needs; the simulator's libraries are the
    `sim` extra, torch and the Triton client the `runtime` extra. Their distributions are
    named like their top-level modules. None when sloscale runs from a clone (not installed).
    """
    try:
        requirements = importlib.metadata.requires("sloscale") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for requirement in requirements:
        name, _, marker = requirement.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([\w-]+)['\"]", marker)
        if extra and re.split(r"[\s\[=<>!~]", name.strip())[0].lower() == module.lower():
            return extra.group(1)
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(argv).parse_args(argv)
        return int(args._module.run(args) or 0)
    except ModuleNotFoundError as error:
        extra = extra_providing((error.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"sloscale: this command needs {error.name}, from the optional dependencies "
              f"'{extra}': pip install 'sloscale[{extra}]' (in a clone: pip install '.[{extra}]')",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
