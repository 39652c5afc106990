"""Running a model on any video: windows over time, scored as test segments."""
