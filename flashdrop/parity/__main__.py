"""``python -m flashdrop.parity``: the parity report (see :mod:`flashdrop.parity`)."""

from flashdrop.parity import main

raise SystemExit(main())
