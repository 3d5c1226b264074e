"""Shell state across steps. The document's blocks read as one terminal session: a name
exported in one block is used in the next, a ``cd`` or ``su -`` holds for what follows.
Each shell step runs in a shell of its own, so what one block sets is carried where it
can be (a literal value as the runbook variable's value, a ``cd`` to a written path as
the next steps' ``cwd``) and every step that depends on what can't be carried (a value
computed by another step, a ``su -`` session, a ``cd`` to a computed path) is listed for
review, naming the step it depends on."""

from __future__ import annotations

import posixpath
import re

from cockpit.importer.drafts import Draft
from cockpit.importer.names import Names, assignments, script_uses
from cockpit.importer.summary import Review

_CD = re.compile(r"^\s*(?:cd|pushd)\s+(\S+)\s*(?:&&|;|$)", re.MULTILINE)
_SESSION = re.compile(
    r"^[ \t]*(?:sudo[ \t]+)?(?:su(?:[ \t]+-l?)?(?:[ \t]+[\w.-]+)?|sudo[ \t]+(?:-\w*i\w*|su\b.*)|"
    r"ssh[ \t]+(?:-\S+[ \t]+)*[\w.@-]+|(?:bash|sh|zsh)(?:[ \t]+-l)?|chroot[ \t]+\S+|toolbox|"
    r"(?:kubectl|oc)[ \t]+(?:exec|rsh|debug|attach)\b(?:(?![ \t]--[ \t]).)*|"
    r"(?:kubectl|oc|docker|podman|crictl)[ \t]+(?:exec|run)\b.*[ \t]--?[ \t]*(?:/bin/)?(?:ba)?sh|"
    r"(?:docker|podman)[ \t]+(?:exec|run)\b.*[ \t](?:/bin/)?(?:ba)?sh|"
    r"gcloud[ \t]+compute[ \t]+ssh\b(?:(?!--command).)*)[ \t]*$",
    re.MULTILINE,
)
"""A line opening another shell the lines after it are typed into: ``su - mastodon``,
``sudo -i``, ``ssh host`` or ``gcloud compute ssh`` with no command, ``bash``, a
container's shell (``kubectl exec`` with no command, ``oc rsh``, ``docker exec -it x
bash``), ``chroot /host``."""


class ShellState:
    """The state pass over the steps of a runbook, in document order."""

    def __init__(self, names: Names, review: Review) -> None:
        self.names = names
        self.review = review
        self.computed: dict[str, Draft] = {}  # name -> the step that computes it

    def document(self, phases: list[list[Draft]]) -> None:
        for drafts in phases:
            self.phase(drafts)

    def phase(self, drafts: list[Draft]) -> None:
        cwd: tuple[str, Draft] | None = None  # written path, the step that went there
        unknown_cwd: Draft | None = None  # a step that went to a computed path
        session: tuple[str, Draft] | None = None
        for draft in drafts:
            if draft.kind != "shell":
                continue
            run = draft.fields["run"]
            self.dependent(draft, run)
            if session:
                self.review.doubt(
                    draft,
                    f"runs in a shell of its own, not in the one step {session[1].id or '?'} "
                    f"opens ({session[0]}): join them, or run both by hand",
                )
            if cwd and not _CD.match(run) and "cwd" not in draft.fields:
                draft.fields["cwd"] = cwd[0]
            elif unknown_cwd and not _CD.match(run):
                self.review.doubt(
                    draft,
                    "runs in the runbook's folder, not where an earlier step's cd went: "
                    "set its cwd",
                )
            for target in _CD.findall(run):
                if re.search(r"[$`~*]", target) or target == "-":
                    cwd, unknown_cwd = None, draft
                else:
                    base = cwd[0] if cwd else ""
                    cwd, unknown_cwd = (
                        (posixpath.normpath(posixpath.join(base, target)), draft),
                        None,
                    )
            opened = _SESSION.search(run)
            if opened:
                session = (opened.group(0).strip(), draft)
                self.review.doubt(draft, f"{session[0]!r} opens a shell that waits for a person")

    def dependent(self, draft: Draft, run: str) -> None:
        """Names this step uses that an earlier one set: a literal is carried as the
        variable's value, a computed one is flagged; then record what it sets."""
        own = assignments(run)
        for name in script_uses(run):
            if name in own:
                continue
            source = self.computed.get(name)
            if source is not None and source is not draft:
                self.review.doubt(
                    draft,
                    f"uses ${name}, which step {source.id or '?'} computes in a shell of its "
                    "own: set the variable to its value, or join the steps",
                )
        for name, value in own.items():
            if value is None:
                self.computed[name] = draft
                self.names.set_elsewhere(name, "")
            else:
                self.computed.pop(name, None)
                self.names.set_elsewhere(name, value)
