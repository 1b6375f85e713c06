"""``python -m rxstream.cli``."""

from rxstream.cli import main

raise SystemExit(main())
