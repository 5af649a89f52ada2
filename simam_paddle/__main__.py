"""``python -m simam_paddle``: the command line."""
from .cli import main

raise SystemExit(main())
