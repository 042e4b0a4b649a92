"""The grading core: one submission taken in, run confined and judged, and many of them in a batch.

- :mod:`~kvkit.grading.intake`: what a student hands in (a folder, a zip, a notebook), taken in once, as adversary
  data; :mod:`~kvkit.grading.notebooks`: a student's notebook back into a package, and its cells' places in the
  grader's messages;
- :mod:`~kvkit.grading.sandbox`: the throw-away folder the student's code runs from, and its confinement;
- :mod:`~kvkit.grading.remote`: the grader's side of the child process that holds the student's code;
  :mod:`~kvkit.grading.child`: the child's own runtime, copied into every sandbox;
- :mod:`~kvkit.grading.fresh`: every check run again on inputs drawn when grading;
- :mod:`~kvkit.grading.grade`: the checks run on one submission; :mod:`~kvkit.grading.report`: its results;
- :mod:`~kvkit.grading.grade_all`: a folder of submissions, in parallel or on a Dask cluster
  (:mod:`~kvkit.grading.cluster`); :mod:`~kvkit.grading.gradescope`: what runs inside Gradescope.

Nothing here imports the nbgrader course (:mod:`kvkit.course`) or the commands (:mod:`kvkit.commands`).
"""
