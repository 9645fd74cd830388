"""``python -m pytest_predeploy`` is the ``predeploy`` command."""

import sys

from pytest_predeploy.tooling.cli import main

sys.exit(main())
