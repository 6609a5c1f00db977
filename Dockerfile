# The pipeline's image: the official Airflow image plus our pinned requirements and code.
# docker-compose.yaml builds it (`docker compose build`); the tag must match requirements.txt's Airflow.
FROM apache/airflow:3.3.2-python3.11

USER airflow

# `--build-arg PIPELINE_S3=true` adds s3fs (requirements-s3.txt), for PIPELINE_STORAGE_ROOT=s3://...
ARG PIPELINE_S3=false

# Installing apache-airflow at the base image's own version stops pip from up- or downgrading Airflow.
COPY --chown=airflow:root requirements.txt /requirements.txt
COPY --chown=airflow:root requirements-s3.txt /requirements-s3.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt \
    $(if [ "${PIPELINE_S3}" = true ]; then echo "-r /requirements-s3.txt"; fi)

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root config/ /opt/airflow/config/
COPY --chown=airflow:root scripts/ /opt/airflow/scripts/
COPY --chown=airflow:root serving/ /opt/airflow/serving/

# A named volume mounted on one of these folders starts with its owner and mode, so any AIRFLOW_UID
# in group 0 can write to it.
RUN mkdir -p /opt/airflow/data /opt/airflow/auth /opt/airflow/source \
    && chmod -R g+rwX /opt/airflow/data /opt/airflow/auth /opt/airflow/source

# include/, scripts/ and serving/ import as packages from /opt/airflow; plugins/ is on sys.path
# through Airflow.
ENV PYTHONPATH=/opt/airflow \
    PIPELINE_STORAGE_ROOT=/opt/airflow/data
