"""``python -m pytest_predeploy.staging`` runs the local target's command line (see the package)."""

import runpy

runpy.run_module("pytest_predeploy.targets", run_name="__main__", alter_sys=True)
