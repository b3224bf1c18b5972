"""The Decision value — what was decided for a member, with its propensity and reasons — as
stored, archived and sent.

Numpy-free on purpose: dispatch, feedback and privacy read and send decisions without the
scoring stack; functions/domain/decision.py makes them and re-exports these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.domain.feature_version import FEATURE_VERSION


class ChosenAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["send", "none"]
    offer_id: str | None = None
    channel: str | None = None
    topic: str | None = None
    send_at: float | None = None  # epoch seconds
    probability: float | None = None  # model's P(redeem)
    expected_value: float = 0.0


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision_id: str
    member_id: str
    trigger: str
    cause_id: str
    decided_at: float
    feature_version: str = FEATURE_VERSION
    model_version: str
    variant: str = "champion"
    holdout: bool = False
    transactional: bool = False
    time_zone: str = "UTC"  # the member's, for scheduling and quiet hours at send time
    action: ChosenAction
    # What the policy would have done; for holdout members `action` is "none".
    intended: ChosenAction
    propensity: float
    exploration: dict[str, Any] = Field(default_factory=dict)
    candidates_considered: int = 0
    candidates_allowed: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    top: list[dict[str, Any]] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)

    @property
    def sends(self) -> bool:
        return self.action.kind == "send"

    @property
    def withheld(self) -> bool:
        """A holdout member's decision that the policy would have sent. It goes through dispatch
        like a send (same time, same send-time checks) and is withheld at the last step, so the
        holdout's would-be sends are a faithful control for the treated members' sends."""
        return self.holdout and not self.sends and self.intended.kind == "send"

    @property
    def dispatched(self) -> bool:
        """Goes to dispatch: a send, or a holdout member's withheld one."""
        return self.sends or self.withheld

    @property
    def outgoing(self) -> ChosenAction:
        """The action dispatch works on: the send, or for a withheld decision the intended one."""
        return self.intended if self.withheld else self.action

    def with_send_at(self, send_at: float) -> Decision:
        """The same decision with its outgoing action moved to `send_at`."""
        field = "intended" if self.withheld else "action"
        moved = getattr(self, field).model_copy(update={"send_at": send_at})
        return self.model_copy(update={field: moved})
