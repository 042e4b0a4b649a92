"""The runtime of the submission's process (the child), the one part of the kit that runs beside the student's code.

The sandbox copies this package into the child's ``harness/`` as the top-level
package ``kvchild`` (:class:`kvkit.sandbox.Sandbox`). The child imports
:mod:`~kvkit.child.jail` first and enters its confinement, then
:mod:`~kvkit.child.serve`, which imports the student's package and answers
probes; both sides speak :mod:`~kvkit.child.protocol` (the grader imports it
as ``kvkit.child.protocol``).

Standard library only here, and in ``jail.py`` and ``protocol.py``: importing
``kvchild.jail`` runs this file before any confinement.
"""
