"""Names a runbook's commands use: ``$NAME`` references become secrets (when they look
secret) or variables to fill in; placeholders (``your-domain.com``, ``<version>``)
become variables whose value is the placeholder."""

from __future__ import annotations

import re
import shlex

DATE = "$(date +%Y%m%d)"  # the built-in ${date}
_ASSIGNED = re.compile(
    r"^\s*(?:export\s+|declare\s+(?:-\w+\s+)?|local\s+|readonly\s+)?"
    r"([A-Za-z_][A-Za-z0-9_]*)=",
    re.MULTILINE,
)
_SHELL_REF = re.compile(r"\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))")
_ANY_DOLLAR = re.compile(r"\$")
_SECRET_NAME = re.compile(r"KEY|TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|DSN|AUTH")
_CONNECTION_URL = re.compile(
    r"(?:DATABASE|DB|REDIS|POSTGRES|PG|MYSQL|MONGO|AMQP|RABBIT)\w*URL|"
    r"URL\w*(?:DATABASE|DB|REDIS)"
)
_ENVIRONMENT = {
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "PWD",
    "SHELL",
    "TERM",
    "LANG",
    "HOSTNAME",
    "RANDOM",
    "SECONDS",
    "LINENO",
    "OLDPWD",
    "UID",
    "EUID",
    "PPID",
    "IFS",
    "BASH_SOURCE",
    "TMPDIR",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "KUBECONFIG",
    "GOPATH",
    "GOROOT",
    "JAVA_HOME",
    "DISPLAY",
    "PS1",
    "HISTFILE",
    "REPLY",
    "BASHPID",
    "PIPESTATUS",
}
"""The operator's own environment: never a runbook variable (an empty one would hide
their value)."""
_ENVIRONMENT_PREFIX = ("XDG_", "LC_", "SSH_", "BASH_")
_SCRIPT_REF = re.compile(r"\$(?:\{([A-Za-z_]\w*)(?=[}\[])|([A-Za-z_]\w*))")
_SINGLE_QUOTED = re.compile(r"'[^'\n]*'")
_LOCAL = re.compile(r"\bfor\s+([A-Za-z_]\w*)\s+in\b|\bread\s+(?:-\w+\s+)*([A-Za-z_]\w*)")


_ASSIGNMENT_LINE = re.compile(
    r"^\s*(?:export\s+|declare\s+(?:-\w+\s+)*|readonly\s+)?[A-Za-z_]\w*(?:\+?=|=\()"
)


def assignments(script: str) -> dict[str, str | None]:
    """Names a script sets for the lines after it: name -> its literal value, or None
    when computed (``$(...)``, another name, an array)."""
    found: dict[str, str | None] = {}
    for line in script.splitlines():
        if not _ASSIGNMENT_LINE.match(line):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = []
        literal = bool(words) and not re.search(r"[$`]|=\(", line)
        for word in words:
            name, equals, value = word.partition("=")
            if equals and re.fullmatch(r"[A-Za-z_]\w*\+?", name):
                found[name.rstrip("+")] = value if literal else None
        if not words:  # an array or an unclosed quote: set, value unknown
            named = re.match(r"\s*(?:export\s+|declare\s+(?:-\w+\s+)*|readonly\s+)?(\w+)", line)
            if named:
                found[named.group(1)] = None
    return found


def script_uses(script: str) -> list[str]:
    """Names a script reads and does not set itself, in order, the operator's
    environment left out (``$HOME``, ``$EDITOR``) and single-quoted text too."""
    assigned = set(_ASSIGNED.findall(script)) | set(assignments(script))
    assigned.update(a or b for a, b in _LOCAL.findall(script))
    found: dict[str, None] = {}
    for match in _SCRIPT_REF.finditer(_SINGLE_QUOTED.sub("", script)):
        name = match.group(1) or match.group(2)
        environment = name in _ENVIRONMENT or name.startswith(_ENVIRONMENT_PREFIX)
        if name not in assigned and not environment:
            found[name] = None
    return list(found)


_HTML = (
    "a|abbr|b|body|br|code|div|em|h[1-6]|head|hr|html|i|img|li|ol|p|pre|script|span|"
    "strong|style|table|td|th|title|tr|ul"
)
PLACEHOLDER = re.compile(
    rf"\byour-[a-z0-9]+(?:[-.][a-z0-9]+)*|<(?!(?:{_HTML})>)"
    r"([a-z][a-z0-9_-]*)>"
)


class Names:
    """The runbook's variables and secrets, in the order the commands use them."""

    def __init__(self) -> None:
        self.variables: dict[str, str] = {}
        self.secrets: list[str] = []
        self.placeholders: dict[str, str] = {}  # placeholder -> variable name
        self.read_unset: dict[str, None] = {}  # names a script reads and does not set

    def reference(self, name: str) -> str:
        if name in self.variables or name in self.secrets:
            return name
        if _SECRET_NAME.search(name) or _CONNECTION_URL.search(name):
            self.secrets.append(name)
        else:
            self.variables[name] = ""
        return name

    def placeholder(self, text: str, name: str) -> str:
        if text not in self.placeholders:
            base = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "PLACEHOLDER"
            if base[0].isdigit():
                base = f"V_{base}"
            candidate, number = base, 2
            while candidate in self.variables or candidate in self.secrets:
                candidate, number = f"{base}_{number}", number + 1
            self.variables[candidate] = text
            self.placeholders[text] = candidate
        return self.placeholders[text]

    def template(self, word: str) -> str | None:
        """A shell word as a templated value: ``$X`` -> ``${X}``, placeholders ->
        variables; None when it holds shell that can't be carried over."""
        word = word.replace(DATE, "\0date\0")
        if "`" in word or "$(" in word:
            return None
        out, position = [], 0
        for match in _SHELL_REF.finditer(word):
            out.append(self.literal(word[position : match.start()]))
            out.append("${" + self.reference(match.group(1) or match.group(2)) + "}")
            position = match.end()
        rest = word[position:]
        if _ANY_DOLLAR.search(rest):
            return None
        out.append(self.literal(rest))
        return "".join(out).replace("\0date\0", "${date}")

    def literal(self, text: str) -> str:
        """Text for a templated field: ``$`` escaped, placeholders as variables."""

        def swap(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(0).removeprefix("your-").split(".")[0]
            return "${" + self.placeholder(match.group(0), name) + "}"

        parts = PLACEHOLDER.split(text)
        if len(parts) == 1:
            return text.replace("$", "$$")
        out, position = [], 0
        for match in PLACEHOLDER.finditer(text):
            out.append(text[position : match.start()].replace("$", "$$"))
            out.append(swap(match))
            position = match.end()
        out.append(text[position:].replace("$", "$$"))
        return "".join(out)

    def shell_references(self, script: str) -> None:
        """Names a script reads and does not set: secrets when they look secret,
        upper-case ones variables to fill in; any of them set by another block gets
        that block's value (``set_elsewhere``)."""
        for name in script_uses(script):
            self.read_unset[name] = None
            if _SECRET_NAME.search(name.upper()) or _CONNECTION_URL.search(name.upper()):
                if name not in self.secrets:
                    self.secrets.append(name)
            elif re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
                self.reference(name)

    def set_elsewhere(self, name: str, value: str) -> None:
        """A block sets ``name`` (to ``value``, "" when computed): a variable when
        another block reads it, its value carried when written out."""
        known = name in self.read_unset and name not in self.secrets
        if known and not self.variables.get(name):
            self.variables[name] = value

    def templated(self, word: str) -> str:
        value = self.template(word)
        if value is None:
            raise ValueError(word)
        return value
