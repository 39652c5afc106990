"""Generated EPIC-shaped data: the dataset's plan and annotation files (`dataset`), its frames
and videos (`render`), and results files of synthetic scores (`results`), for demos, tests
and benchmarks without the real dataset."""
