"""``manual``: a checklist the operator ticks; who, when and any note are recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cockpit.steps.base import Field, NeedsOperator, StepContext, StepKind, StepResult


class ManualStep(StepKind):
    name = "manual"
    summary = "checklist items the operator ticks, with who, when and a note"
    fields = {"items": Field("str_list", required=True, help="the checklist items")}

    def describe(self, fields: Mapping[str, Any]) -> str:
        return "\n".join(f"[ ] {item}" for item in fields["items"])

    async def run(self, ctx: StepContext) -> StepResult:
        items = list(ctx.fields["items"])
        answers = await ctx.operator.checklist(ctx.step, items)
        if answers is None:
            raise NeedsOperator("the checklist needs an operator to tick it")
        for index, (item, (ticked, note)) in enumerate(zip(items, answers, strict=True)):
            await ctx.tick(index, item, ticked, note)
        missing = [item for item, (ticked, _) in zip(items, answers, strict=True) if not ticked]
        if missing:
            return StepResult(
                False, f"{len(missing)} of {len(items)} items not ticked: " + "; ".join(missing)
            )
        return StepResult(True, f"{len(items)} of {len(items)} items ticked")
