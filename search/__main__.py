"""`python -m search` is the `polarmap` command."""

from search.cli import main

raise SystemExit(main())
