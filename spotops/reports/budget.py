"""The error budget in ``spotops status``: each service level objective, the budget left
over its window and the burn rates over the last hour and six hours.

Read with this command's own CloudWatch client by the functions' own reader
(:mod:`chalicelib.slo`, through :mod:`spotops.lambda_code`), from the objectives the ops
stack was deployed with (its parameters), so status shows what chaos and the alarm alert
read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import spotops.lambda_code  # noqa: F401  (puts ops_lambdas on sys.path)

# isort: split
from chalicelib.errors import SettingsError
from chalicelib.slo import Budget, BudgetReader, burn_text, load_slo_settings

if TYPE_CHECKING:
    from spotops.aws import ClientFactory

# The ops stack's parameters, as the functions' environment names them (ops.yaml).
PARAMETER_ENVIRONMENT = {
    "SloAvailabilityTarget": "SLO_AVAILABILITY_TARGET",
    "SloLatencyTarget": "SLO_LATENCY_TARGET",
    "SloLatencyThresholdSeconds": "SLO_LATENCY_THRESHOLD_SECONDS",
    "SloWindowDays": "SLO_WINDOW_DAYS",
    "LoadBalancerFullName": "SLO_LOAD_BALANCER",
}


def read_budgets(
    client: ClientFactory, ops_parameters: Mapping[str, str], now: datetime
) -> list[Budget] | str:
    """Every objective's budget at ``now``, or why the objectives themselves are unusable.

    A budget CloudWatch cannot give comes back unknown, with why (never as healthy).
    """
    env = {
        variable: ops_parameters[name]
        for name, variable in PARAMETER_ENVIRONMENT.items()
        if name in ops_parameters
    }
    try:
        settings = load_slo_settings(env)
    except SettingsError as exc:
        return f"the ops stack's objectives are invalid: {exc}"
    reader = BudgetReader(client("cloudwatch"), settings.load_balancer)
    return list(reader.read(settings.objectives, now))


def budget_rows(budgets: Sequence[Budget] | str) -> list[str]:
    """One row per objective, as ``spotops status`` prints them (under a heading).

    Example
    -------
    >>> from chalicelib.slo import Objective
    >>> budget_rows([Budget(Objective("availability", 99.9), 0.62, 14.4, 6.0)])
    ['availability 99.9% over 30 d: 62.0% left; burn rate 14.40x over 1 h, 6.00x over 6 h']
    """
    if isinstance(budgets, str):
        return [f"budget unknown: {budgets}"]
    rows = []
    for budget in budgets:
        head = budget.objective.describe()
        if budget.left is None:
            rows.append(f"{head}: budget unknown ({budget.error})")
            continue
        left = budget.left_text(1)
        left = left if budget.left <= 0 else f"{left} left"
        rows.append(
            f"{head}: {left}; burn rate {burn_text(budget.burn_1h)} over 1 h, "
            f"{burn_text(budget.burn_6h)} over 6 h"
        )
    return rows
