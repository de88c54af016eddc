"""``python -m agent.cli``: the same as the ``classroom-agent`` command."""

import sys

from agent.cli import main

sys.exit(main())
