"""One module per ``posefix-bench`` command (see :mod:`posefix_bench.cli`)."""
