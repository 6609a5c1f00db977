"""``python -m scripts.stack.init_airflow VARIABLES_FILE``: ``airflow db migrate``, then ``airflow
variables import --action-on-existing-key skip VARIABLES_FILE``, through Airflow's own CLI parser in one
interpreter. Two ``airflow`` commands each paid the CLI's start (Airflow and its providers imported,
several seconds on 2 cores) on every ``make up``; this pays it once."""

from __future__ import annotations

import sys

from airflow.cli import cli_parser


def main(variables_file: str) -> None:
    parser = cli_parser.get_parser()
    for argv in (
        ["db", "migrate"],
        ["variables", "import", "--action-on-existing-key", "skip", variables_file],
    ):
        args = parser.parse_args(argv)
        args.func(args)


if __name__ == "__main__":
    main(sys.argv[1])
