"""Airflow extensions for the ML pipeline: operators, sensors, triggers and notifiers."""
