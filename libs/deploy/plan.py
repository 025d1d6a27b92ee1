"""The deploy plan and report: what each deploy step found, and what it changed or would change.

Why a plan object: `claims deploy --dry-run` and a real deploy must report the same thing (the dry run is the
preview of the real one), and the idempotence guarantee - a second deploy with nothing changed changes nothing - is
checked by counting the plan's changes, in tests and by operators reading the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Component(StrEnum):
    """What a plan item is about."""

    ARTIFACT = "artifact"  # wheel, Spark job scripts, config files shipped to the artifact bucket
    CONFIG = "config"  # the app configuration rendered from the stack outputs
    DDL = "ddl"  # one warehouse table
    MIGRATION = "migration"  # one warehouse schema migration (libs/warehouse/migrations.py)
    TOPIC = "topic"  # one Kafka topic
    EMR_STEP = "emr-step"  # one Spark job on the EMR cluster
    STATE = "state"  # the deploy ledger in the artifact bucket


class Action(StrEnum):
    """What the deploy does (or, in a dry run, would do) to a component."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"  # cancel the old version, start the new one (EMR steps)
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # not attempted, the detail says why (--skip-topics, dry run)
    BLOCKED = "blocked"  # cannot be done safely; the deploy stops before changing anything


CHANGING_ACTIONS = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE})


@dataclass(frozen=True)
class PlanItem:
    """One component's outcome. `detail` names keys, digests, step ids - never PHI or secret values."""

    component: Component
    name: str
    action: Action
    detail: str = ""

    @property
    def changes(self) -> bool:
        """True if this item changes the stack."""
        return self.action in CHANGING_ACTIONS


@dataclass
class DeployPlan:
    """Every item of one deploy, in the order the steps run."""

    stack: str
    environment: str
    dry_run: bool
    items: list[PlanItem] = field(default_factory=list)

    def add(self, item: PlanItem) -> None:
        """Append one item."""
        self.items.append(item)

    def extend(self, items: list[PlanItem]) -> None:
        """Append several items."""
        self.items.extend(items)

    @property
    def change_count(self) -> int:
        """How many items change the stack (0 on a repeated deploy with nothing new)."""
        return sum(1 for item in self.items if item.changes)

    @property
    def blocked(self) -> list[PlanItem]:
        """Items the deploy refuses to apply."""
        return [item for item in self.items if item.action is Action.BLOCKED]

    def by_component(self, component: Component) -> list[PlanItem]:
        """Items of one component kind."""
        return [item for item in self.items if item.component is component]

    def summary(self) -> str:
        """One line for logs: '3 changes, 9 unchanged, 1 skipped (dry run)'."""
        counts = {action: sum(1 for i in self.items if i.action is action) for action in Action}
        parts = [f"{self.change_count} change{'s' if self.change_count != 1 else ''}",
                 f"{counts[Action.UNCHANGED]} unchanged"]
        if counts[Action.SKIPPED]:
            parts.append(f"{counts[Action.SKIPPED]} skipped")
        if counts[Action.BLOCKED]:
            parts.append(f"{counts[Action.BLOCKED]} blocked")
        verb = " (dry run: nothing was changed)" if self.dry_run else ""
        return f"stack {self.stack} ({self.environment}): " + ", ".join(parts) + verb

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {
            "stack": self.stack,
            "environment": self.environment,
            "dry_run": self.dry_run,
            "changes": self.change_count,
            "items": [
                {"component": i.component.value, "name": i.name, "action": i.action.value, "detail": i.detail}
                for i in self.items
            ],
        }
