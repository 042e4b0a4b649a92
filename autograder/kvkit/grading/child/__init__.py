"""The runtime of the submission's process (the child), the one part of the kit that runs beside the student's code.

The sandbox copies this package into the child's ``harness/`` as the top-level
package ``kvchild`` (:class:`kvkit.grading.sandbox.Sandbox`). Every child starts
through :mod:`~kvkit.grading.child.boot` (one boot line, in the role of a probe
server, a notebook's kernel or a zygote, :mod:`~kvkit.grading.child.zygote`, which
forks probe servers). A child imports :mod:`~kvkit.grading.child.jail` first and
enters its confinement, then :mod:`~kvkit.grading.child.serve`, which imports the
student's package and answers probes; both sides speak
:mod:`~kvkit.grading.child.protocol` (the grader imports it as
``kvkit.grading.child.protocol``).

Standard library only here, and in ``boot.py`` (at import), ``jail.py`` and
``protocol.py``: they run before any confinement.
"""
