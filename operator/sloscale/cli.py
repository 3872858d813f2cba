"""`sloscale` command line: one subcommand per module, imported only when used."""

from __future__ import annotations

import argparse
import importlib
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    return int(args._module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
