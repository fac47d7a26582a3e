"""The text ``plan`` prints: files, sizes, secrets by origin, and the diffs."""

from __future__ import annotations

from collections.abc import Sequence

from installer.render.plan import FileChange, RenderedPlan
from installer.sizes import human_size


def plan_summary(
    plan: RenderedPlan, changes: Sequence[FileChange], out: str, *, release: str
) -> str:
    """A summary an operator can read and a reviewer can diff; never a secret value."""
    modes = {f.path: f for f in plan.files}
    lines = [f"Plan for the {plan.target} target, release {release}, in {out}", "", "Files:"]
    width = max((len(c.path) for c in changes), default=0)
    for change in changes:
        item = modes.get(change.path)
        notes = []
        if item is not None:
            notes.append(f"{item.mode:04o}")
            if item.holds_secrets:
                notes.append("holds secrets")
        size = human_size(change.size) if change.kind != "removed" else "-"
        lines.append(
            f"  {change.kind:<9}  {change.path:<{width}}  {size:>9}"
            + (f"  ({', '.join(notes)})" if notes else "")
        )
    if plan.kubernetes_objects:
        lines += ["", "Kubernetes objects, in apply order:"]
        lines += [
            f"  {o.kind}/{o.name}" + (f" -n {o.namespace}" if o.namespace else "")
            for o in plan.kubernetes_objects
        ]
    if plan.secrets:
        lines += ["", "Secrets:"]
        key_width = max(len(s.key) for s in plan.secrets)
        lines += [f"  {s.key:<{key_width}}  {s.shown_as}" for s in plan.secrets]
    diffs = [c.diff for c in changes if c.diff]
    if diffs:
        lines += ["", f"Changes against what was in {out}:"]
        lines += [d.rstrip("\n") for d in diffs]
    counts = {
        kind: sum(1 for c in changes if c.kind == kind)
        for kind in ("new", "changed", "unchanged", "removed")
    }
    lines += [
        "",
        f"{len(plan.files)} files: "
        + ", ".join(f"{n} {kind}" for kind, n in counts.items() if n or kind != "removed"),
    ]
    return "\n".join(lines) + "\n"
