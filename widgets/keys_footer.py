"""The footer of every screen: Textual's, drawn again only when the keys it shows change."""

from __future__ import annotations

from textual.widgets import Footer


class KeysFooter(Footer):
    """Textual's ``Footer``, recomposed only when the keys it shows change.

    Textual recomposes a footer (removes every key and mounts them again, with their
    styles) each time the screen's bindings may have changed, and they "may" often: a
    focus change asks twice (at once and after the next refresh), a screen resumed asks
    again. Opening the cockpit recomposed it three times in a row with the same keys,
    the last two after its first paint and during the first step's output.
    """

    def __init__(self, *, show_command_palette: bool = True, compact: bool = False) -> None:
        super().__init__(show_command_palette=show_command_palette, compact=compact)
        self._keys: tuple | None = None  # what the last composition showed

    def shown_keys(self) -> tuple:
        """Each key the footer shows, as it shows it (enabled or not, its tooltip)."""
        app = self.app
        keys = [
            (binding.key, app.get_key_display(binding), binding.description, enabled, tooltip)
            for _, binding, enabled, tooltip in self.screen.active_bindings.values()
            if binding.show
        ]
        return (*keys, self.show_command_palette and app.ENABLE_COMMAND_PALETTE)

    async def recompose(self) -> None:
        keys = self.shown_keys()
        if keys == self._keys:
            return
        self._keys = keys
        await super().recompose()
