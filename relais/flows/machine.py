"""A flow type's states and the moves allowed between them.

Every flow type (``acte``, ``acte-followup``, ``pes``, …) declares one
:class:`FlowMachine`. The rule is the same for all of them:

- the *ranked* states go forward only: an event may move a flow to a higher rank
  (or repeat its state; a repeat is acknowledged, never re-applied);
- the *setbacks* (``rejected``, ``failed``, ``uncertain`` by default) end an
  attempt without success: any flow that is not final may move to them, and a
  flow in them may move to any state (a corrected resubmission, a replayed dead
  letter, an operator settling an uncertain delivery);
- the *finals* end the flow: only a higher rank follows them (``acknowledged`` →
  ``cancelled`` after an ARAnnulation);
- a state the machine does not know is not judged (accepted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_SETBACKS = frozenset({"rejected", "failed", "uncertain"})


@dataclass(frozen=True)
class FlowMachine:
    """The states of one flow type, in order, and which of them end the flow."""

    flow_type: str
    ranks: Mapping[str, int]
    finals: frozenset[str]
    setbacks: frozenset[str] = field(default=DEFAULT_SETBACKS)

    def allows(self, current: str | None, new: str) -> bool:
        """Whether a flow in ``current`` (None: no state yet) may take ``new``."""
        if current is None or current == new or current in self.setbacks:
            return True
        if new in self.setbacks:
            return current not in self.finals
        current_rank, new_rank = self.ranks.get(current), self.ranks.get(new)
        if current_rank is None or new_rank is None:
            return True
        return new_rank > current_rank

    def states(self) -> tuple[str, ...]:
        """Every state this machine names: ranked ones in order, then the setbacks."""
        ranked = sorted(self.ranks, key=lambda state: self.ranks[state])
        return (*ranked, *sorted(self.setbacks))
