"""Run probes in a child process that holds the student's code; the grader only reads its replies.

The child imports the submission; this process never does. Replies are
JSON (see ``kvchecks.codec``), checked before they are decoded
(:mod:`kvkit.grading.remote.replies`), so nothing the child sends can run code here
or make this process allocate much. The child first confines itself
(``kvchild.jail``: its own user, hidden secrets, memory and file-size limits),
reports ``{"booted": info}``, then imports the student's ``kvcache``
(:mod:`kvkit.grading.remote.process`). What it prints goes through a pipe into a
bounded buffer (:mod:`kvkit.grading.remote.output`), never into a file or the report
in full.

Timeouts (:mod:`kvkit.grading.remote.backend`): a probe that runs past ``timeout``
seconds is killed with the child's whole process group (and every process of
its user); once a probe of a TODO has timed out, that TODO's later probes get
``retry_timeout`` (the reference needs a few milliseconds each), a call that
timed out or killed the child is not run again, and the whole submission has
a ``budget``. A warm spare child is kept once one has been lost, so a
restart costs no torch import.
"""
