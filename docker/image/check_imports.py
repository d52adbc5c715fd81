"""Fail the image build when the reference server imports something the image lacks.

Imports every module of ``reference_server`` except ``__main__`` (which would
start the CLI) and names the missing distribution, so a new third-party import
in the server breaks ``docker/build.sh`` at once instead of the first test run.
"""

import importlib
import pkgutil
import sys

import reference_server

missing: list[str] = []
for module in pkgutil.walk_packages(reference_server.__path__, "reference_server."):
    if module.name.rsplit(".", 1)[-1] == "__main__":
        continue
    try:
        importlib.import_module(module.name)
    except ModuleNotFoundError as exc:
        missing.append(f"{module.name} needs {exc.name!r}")

if missing:
    print("reference_server imports modules the image does not have: " + "; ".join(missing), file=sys.stderr)
    print("add the distribution to pyproject.toml [project].dependencies "
          "(or drop it from HOST_ONLY in docker/build.sh) and rebuild", file=sys.stderr)
    sys.exit(1)
print(f"checked imports of reference_server from {reference_server.__path__[0]}")
