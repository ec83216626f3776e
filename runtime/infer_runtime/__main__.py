"""``python -m infer_runtime`` is the ``infer-runtime`` command."""

import sys

from infer_runtime.cli import main

sys.exit(main())
