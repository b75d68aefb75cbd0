"""``python -m tvb_eib_plugin ...``: the ``tvb-eib`` command line."""

import sys

from ._cli.main import main

sys.exit(main())
