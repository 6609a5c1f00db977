"""Benchmarks of the pipeline (``make bench``): each prints a table and appends its figures, with the
machine, the load, the Airflow version and the git revision, to ``bench/results/<name>.jsonl``."""
