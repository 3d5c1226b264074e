"""Messages the screens receive. Engine events arrive wrapped, already batched."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from cockpit.events import Event


@dataclass
class EngineEvent(Message):
    """An engine event (state changes are already in the journal when this arrives)."""

    event: Event
