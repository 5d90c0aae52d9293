"""`python -m aggregator` is the same as the `aggregator` console script."""

from aggregator.cli.main import main

raise SystemExit(main())
