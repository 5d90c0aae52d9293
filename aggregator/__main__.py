"""`python -m aggregator` is the same as the `aggregator` console script."""

from aggregator import main

raise SystemExit(main())
