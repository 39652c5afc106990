"""Generated EPIC-shaped data: frames and annotation files (`dataset`) and results files of
synthetic scores (`results`), for demos, tests and benchmarks without the real dataset."""
