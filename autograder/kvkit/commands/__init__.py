"""The ``kvkit`` sub-commands, one module each with ``add_parser(sub)`` and its ``run(args)``: the command line over
the grading core (:mod:`kvkit.grading`), the nbgrader course (:mod:`kvkit.course`) and the kit's basics."""
