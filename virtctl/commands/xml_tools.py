"""Commands about XML documents: validate FILE, edit DOMAIN."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile

import click

from virtctl.cli.options import command, domain_arg, positional
from virtctl.cli.session import pass_session
from virtctl.errors import OperationFailed, VirtError, XMLError

KIND_CHOICE = click.Choice(["domain", "network", "pool", "volume", "domainsnapshot", "node"])


def check_document(data: bytes, source: str, kind: str | None = None):
    """Parse and validate ``data``; return (kind, problems) with semantic
    checks (names, UUIDs) added to the schema's for domains."""
    from virtctl.xml import validate, xmlapi

    root = xmlapi.parse(data, source=source)
    kind = kind or validate.detect_kind(root)
    found = validate.problems(root, kind, source=source, text=data)
    if not found and kind == "domain":
        from virtctl.xml.domain import DomainDef

        try:
            DomainDef(root).check(source)
        except XMLError as exc:
            found = [validate.Problem(source, xmlapi.line_of(root), 0, "/domain", exc.message)]
    return kind, found


@command("validate", help="""Check an XML document against virtctl's schemas (like virt-xml-validate).

The kind (domain, network, pool, volume, domainsnapshot, node) is taken
from the root element unless given.  Every problem is listed with its file,
line, column and XPath; the exit status is 5 (XML_ERROR) if there is any.

\b
Examples:
  virtctl validate guest.xml
  virtctl validate net.xml network""")
@positional("file", help="the XML file to check", completer="file")
@positional("kind", required=False, help="document kind (default: from the root element)",
            type=KIND_CHOICE)
@pass_session
def validate_cmd(session, file, kind):
    from virtctl.xml import xmlapi

    kind, found = check_document(xmlapi.read_file(file), file, kind)
    if session.json:
        session.emit({"file": file, "kind": kind, "valid": not found,
                      "problems": [p.to_dict() for p in found]})
    else:
        for p in found:
            session.err.write(f"{p}\n")
        if not found:
            session.print(f"{file} validates")
    if found:
        raise XMLError(f"{file} fails to validate ({len(found)} problem{'s' if len(found) > 1 else ''})",
                       detail={"problems": [p.to_dict() for p in found]})


def _editor() -> list[str]:
    cmd = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return shlex.split(cmd)


def _ask_again(session, exc: VirtError) -> bool:
    """On a terminal, show the error and offer to edit again (virsh's
    prompt); elsewhere, no (the caller reports the error).  An error shown
    here is marked reported, so that declining does not print it twice."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False
    session.err.write(f"error: {exc.message}\n")
    exc.reported = True
    while True:
        session.err.write("Failed. Try again? [y,n]: ")
        session.err.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no", ""):
            return False


@command("edit", help="""Edit a domain's persistent XML in $VISUAL or $EDITOR, then redefine it.

The edited XML is validated on save; on an error the problem is shown and,
on a terminal, you may edit again.  Without a change nothing is redefined.
If the domain changed while you were editing, your edit is refused rather
than overwriting the other change.  (virsh reports success for a failed
edit when stdin is not a terminal; virtctl never does.)

\b
Example:
  EDITOR=nano virtctl edit web1""")
@domain_arg(completer="domain:persistent")
@pass_session
def edit(session, domain):
    dom = session.domain(domain)
    new = edit_document(session, dom.xml(inactive=True), prefix=f"virtctl-{dom.uuid}-", kind="domain",
                        current=lambda: dom.xml(inactive=True),
                        define=lambda text, path: session.conn.define_domain(text, source=path),
                        what=f"domain '{dom.name}'")
    if new is None:
        session.done(dom, "Domain '{name}' XML configuration not changed.", "edit", changed=False)
        return
    session.done(new, "Domain '{name}' XML configuration edited.", "edit", changed=True)


def edit_document(session, original: str, *, prefix: str, kind: str, current, define, what: str):
    """The editing loop of ``edit`` for any kind: ``original`` in the editor;
    None when unchanged, else ``define(text, path)``'s result.  ``current()``
    re-reads the definition: a change made meanwhile refuses the edit."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".xml")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(original)
        while True:
            try:
                rc = subprocess.call([*_editor(), path])
            except OSError as exc:
                raise OperationFailed(f"cannot run editor {_editor()[0]!r}: {exc.strerror}") from None
            if rc != 0:
                raise OperationFailed(f"editor exited with status {rc}; nothing changed")
            with open(path, "rb") as f:
                edited = f.read()
            if edited.decode("utf-8", "surrogateescape") == original:
                return None
            try:
                check_document(edited, path, kind)
                if current() != original:
                    raise OperationFailed(f"{what} was changed by someone else while you edited it; "
                                          f"your edit was not applied; run the edit again")
                return define(edited.decode("utf-8", "surrogateescape"), path)
            except VirtError as exc:
                if isinstance(exc, XMLError) and _ask_again(session, exc):
                    continue
                raise
    finally:
        os.unlink(path)
