"""`python -m epic_ar` is the same as the `epic-ar` console script."""

from epic_ar.cli.main import main

raise SystemExit(main())
