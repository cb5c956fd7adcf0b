"""The checkout's ops toolkit code (``ops_lambdas/chalicelib``), importable by spotops.

Where the command line must decide or record exactly as the functions do (the chaos guards,
the ledger's freeze and locks, the deployment diagnosis), it runs the functions' own code
rather than a second copy of it. Import this module before any ``chalicelib`` import: it
puts ``ops_lambdas`` on ``sys.path`` (spotops is installed editable from the checkout, see
the Makefile). Nothing else in spotops touches ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from spotops.errors import SpotopsError

OPS_LAMBDAS = Path(__file__).resolve().parents[1] / "ops_lambdas"
if not (OPS_LAMBDAS / "chalicelib").is_dir():  # pragma: no cover - spotops outside a checkout
    raise SpotopsError(f"spotops needs the checkout's ops_lambdas/; not at {OPS_LAMBDAS}.")
if str(OPS_LAMBDAS) not in sys.path:
    sys.path.append(str(OPS_LAMBDAS))
