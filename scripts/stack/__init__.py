"""The local stack: Airflow, a data source, a mail sink and the model server on one machine.

``config`` says what runs and with which settings, ``supervisor`` starts and stops the processes,
``rest`` talks to Airflow's REST API, ``launcher`` puts the three together and ``cli`` is the command
line behind ``make up/down/demo/publish/status``.
"""
