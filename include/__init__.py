"""The pipeline's logic as plain Python: no Airflow imports, nothing done at import time."""
