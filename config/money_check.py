"""Start-up check: every figure the tool enforces can be computed in the configured region.

Region × catalog × price table: the region must be in the price table and every catalog template's instance
type priced there, or the web app and the worker refuse to start, naming what is missing. (A course's time
zone unknown to PostgreSQL is a runtime matter, handled per row by the sweep: it stops that course's rows.)
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.catalog import Catalog, load_catalog
from config.prices import PriceError, PriceTable, load_prices

FALLBACK_ZONE = "UTC"  # the sweep's fallback for an unknown course time zone must itself exist


class MoneyConfigError(RuntimeError):
    """The price table cannot price what the catalog can launch in this region."""


def money_config_problems(region: str, catalog: Catalog, prices: PriceTable) -> list[str]:
    """What is missing, one sentence each; empty when every template can be priced in `region`."""
    try:
        table = prices.region(region)
    except PriceError:
        return [f"config/prices.json has no prices for the configured AWS region {region} (AWS_REGION)."]
    problems = [
        f"config/prices.json has no {region} price for {t.instance_type} (catalog template {t.id})."
        for t in catalog.templates
        if t.instance_type not in table.instance_hourly
    ]
    if catalog.get(catalog.default) is None:
        problems.append(f"The catalog's default template {catalog.default} is not in the catalog.")
    try:
        ZoneInfo(FALLBACK_ZONE)
    except ZoneInfoNotFoundError:
        problems.append("The time zone database (tzdata) is missing: course time zones cannot be read.")
    return problems


def require_money_config(region: str) -> None:
    """Raise MoneyConfigError naming everything missing (web app and worker start-up)."""
    problems = money_config_problems(region, load_catalog(), load_prices())
    if problems:
        raise MoneyConfigError("Refusing to start: budgets could not be enforced. " + " ".join(problems))
