"""The one price table: every cost figure the tool shows or enforces comes from here (Decimal, never float)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

PRICES_FILE = Path(__file__).with_name("prices.json")
HOURS_PER_MONTH = Decimal(730)  # AWS bills storage per GB-month of 730 hours


class PriceError(LookupError):
    """No price for this region or instance type: callers must fail closed."""


@dataclass(frozen=True)
class RegionPrices:
    """Prices in one region."""

    region: str
    instance_hourly: dict[str, Decimal]
    ebs_gb_month: Decimal
    efs_gb_month: Decimal
    public_ipv4_hourly: Decimal = Decimal(0)  # every workspace has one while its instance runs
    snapshot_gb_month: Decimal = Decimal(0)
    s3_gb_month: Decimal = Decimal(0)
    transfer_out_gb: Decimal = Decimal(0)
    ebs_gb_month_by_type: dict[str, Decimal] = field(default_factory=dict)  # other EBS types than gp3

    def ebs_gb_month_of(self, volume_type: str) -> Decimal:
        """$/GB-month of an EBS volume of this type (gp3: `ebs_gb_month`).

        A type the table does not know is priced at the highest EBS price it knows (never at zero): an unknown
        volume is over-counted rather than free. Provisioned IOPS and throughput (io1/io2, gp3 above its baseline)
        are not priced: the tool's own volumes are baseline gp3."""
        known = {**self.ebs_gb_month_by_type, "gp3": self.ebs_gb_month}
        return known.get(volume_type, max(known.values()))

    def hourly(self, instance_type: str) -> Decimal:
        """On-demand $/hour for an instance type."""
        try:
            return self.instance_hourly[instance_type]
        except KeyError as exc:
            raise PriceError(f"No price for {instance_type} in {self.region}.") from exc

    def running_hourly(self, instance_type: str) -> Decimal:
        """$/hour while the instance runs: on-demand compute (T3 in standard credit mode) plus its public IPv4."""
        return self.hourly(instance_type) + self.public_ipv4_hourly

    def storage_hourly(self, gb: int) -> Decimal:
        """$/hour for a gp3 volume of this size (billed while stopped too)."""
        return self.ebs_gb_month * gb / HOURS_PER_MONTH

    def archive_hourly(self, gb: int) -> Decimal:
        """$/hour for an archive of this many GB in S3 Standard (the ledger's "archive" course line)."""
        return self.s3_gb_month * gb / HOURS_PER_MONTH

    def daily(self, instance_type: str, volume_gb: int) -> Decimal:
        """$/day running 24 hours, compute plus storage."""
        return (self.running_hourly(instance_type) + self.storage_hourly(volume_gb)) * 24


@dataclass(frozen=True)
class PriceTable:
    """All regions."""

    regions: dict[str, RegionPrices]

    def region(self, name: str) -> RegionPrices:
        """Prices for a region, or PriceError."""
        try:
            return self.regions[name]
        except KeyError as exc:
            raise PriceError(f"No prices for region {name}.") from exc


def parse_prices(data: dict[str, object]) -> PriceTable:
    """Build the table from the JSON file's content (strings become Decimals)."""
    regions = {}
    for name, raw in dict(data["regions"]).items():  # type: ignore[call-overload]
        regions[name] = RegionPrices(
            region=name,
            instance_hourly={k: Decimal(v) for k, v in raw["instance_hourly"].items()},
            ebs_gb_month=Decimal(raw["ebs_gp3_gb_month"]),
            efs_gb_month=Decimal(raw["efs_standard_gb_month"]),
            public_ipv4_hourly=Decimal(raw.get("public_ipv4_hourly", "0")),
            snapshot_gb_month=Decimal(raw.get("snapshot_gb_month", "0")),
            s3_gb_month=Decimal(raw.get("s3_standard_gb_month", "0")),
            transfer_out_gb=Decimal(raw.get("data_transfer_out_gb", "0")),
            ebs_gb_month_by_type={k: Decimal(v) for k, v in raw.get("ebs_gb_month_by_type", {}).items()},
        )
    return PriceTable(regions)


@lru_cache(maxsize=1)
def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """Read the price file once."""
    return parse_prices(json.loads(path.read_text()))
