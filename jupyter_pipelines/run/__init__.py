"""Running a pipeline: the pure scheduler, the executors, the step task and the one run loop."""
