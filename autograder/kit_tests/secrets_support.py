"""What must never reach a student: the reference's solution lines (for the kit's leak scans)."""

from __future__ import annotations

from kvkit.paths import Layout
from kvkit.skeleton import solution_regions


def reference_solution_lines(layout: Layout, min_length: int = 26) -> set[str]:
    """Stripped lines inside ``layout``'s reference's solution regions, long enough to be distinctive; a line the
    provided code holds too (a call of a provided helper, say) gives nothing away."""
    found, provided = set(), set()
    for path in (layout.reference / layout.assignment.package).glob("*.py"):
        lines = path.read_text().splitlines()
        inside = set()
        for _, begin, end in solution_regions(path.read_text(), str(path)):
            inside |= set(range(begin, end - 1))
            found |= {line.strip() for line in lines[begin:end - 1] if len(line.strip()) >= min_length}
        provided |= {line.strip() for number, line in enumerate(lines) if number not in inside}
    return found - provided
