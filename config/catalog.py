"""The workspace template catalog: a data file, validated when loaded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CATALOG_FILE = Path(__file__).with_name("workspace_templates.json")


class CatalogError(ValueError):
    """The catalog file is malformed."""


@dataclass(frozen=True)
class WorkspaceTemplate:
    """One template students can be given."""

    id: str
    name: str
    instance_type: str
    root_volume_gb: int
    description: str
    connect: tuple[str, ...]
    hibernation: bool
    image: str  # "ssm:<public parameter>" (looked up per region) or "ami-…" (fixed)
    idle_stop_minutes: int
    os_user: str


@dataclass(frozen=True)
class Catalog:
    """All templates and the course default."""

    templates: tuple[WorkspaceTemplate, ...]
    default: str

    def get(self, template_id: str) -> WorkspaceTemplate | None:
        """The template with this id, or None."""
        return next((t for t in self.templates if t.id == template_id), None)


def parse_catalog(data: dict[str, object]) -> Catalog:
    """Validate and build a Catalog from the file's JSON."""
    raw = data.get("templates")
    if not isinstance(raw, list) or not raw:
        raise CatalogError("the catalog needs a non-empty 'templates' list")
    templates = []
    for i, item in enumerate(raw):
        try:
            templates.append(
                WorkspaceTemplate(
                    id=str(item["id"]),
                    name=str(item["name"]),
                    instance_type=str(item["instance_type"]),
                    root_volume_gb=int(item["root_volume_gb"]),
                    description=str(item["description"]),
                    connect=tuple(item["connect"]),
                    hibernation=bool(item["hibernation"]),
                    image=str(item["image"]),
                    idle_stop_minutes=int(item["idle_stop_minutes"]),
                    os_user=str(item.get("os_user", "ubuntu")),
                )
            )
            if not (templates[-1].image.startswith("ssm:/") or templates[-1].image.startswith("ami-")):
                raise ValueError(f"image must be ssm:/… or ami-…, got {templates[-1].image!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"template #{i + 1} is missing or has a bad field: {exc}") from exc
    ids = [t.id for t in templates]
    if len(set(ids)) != len(ids):
        raise CatalogError("template ids must be unique")
    from config.prices import load_prices

    unpriced = [
        t.instance_type for t in templates if t.instance_type not in load_prices().region("us-east-1").instance_hourly
    ]
    if unpriced:
        raise CatalogError(f"no price for instance types {unpriced}: add them to config/prices.json")
    default = str(data.get("default", ""))
    if default not in ids:
        raise CatalogError(f"the default template {default!r} is not in the catalog")
    return Catalog(tuple(templates), default)


@lru_cache(maxsize=1)
def load_catalog(path: Path = CATALOG_FILE) -> Catalog:
    """Read and validate the catalog file once."""
    return parse_catalog(json.loads(path.read_text()))
