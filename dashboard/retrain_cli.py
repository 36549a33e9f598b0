"""``adn-retrain``: queue a model version retrained from the images reviewers confirmed normal.

The same action as the Train page's "Retrain from reviewed normals" (``services.retrain``), for
scripts: it reads the ``ADN_*`` settings, acts as the named reviewer or admin (the store checks
the role and records who), writes the child model version and its job, then hands the job to the
workers. ``--dry-run`` only says what the child would train on.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from dashboard.services import retrain, worker_status
from db.errors import StoreError
from db.repositories import get_user_by_name
from db.session import make_engine, make_session_factory, session_scope
from db.settings import StoreSettings

EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``adn-retrain``."""
    parser = argparse.ArgumentParser(
        prog="adn-retrain",
        description="Queue a new model version trained on a ready model's training images plus "
        "the images reviewers confirmed normal (newest first, up to a cap). Anomalous and "
        "unsure verdicts never train.",
    )
    parser.add_argument("model", type=int, help="id of the ready model version to retrain")
    parser.add_argument("--user", required=True, help="reviewer or admin who asks for it")
    parser.add_argument(
        "--batch",
        type=int,
        action="append",
        dest="batches",
        metavar="ID",
        help="take confirmed normals of this batch only (repeat for several; default: all)",
    )
    parser.add_argument(
        "--cap",
        type=int,
        default=retrain.DEFAULT_CAP,
        help=f"at most this many confirmed normals, newest first (default {retrain.DEFAULT_CAP})",
    )
    parser.add_argument("--name", help="name of the new version (default: the parent's)")
    parser.add_argument("--preset", help="training schedule (default: the parent's)")
    parser.add_argument(
        "--dry-run", action="store_true", help="say what it would train on; queue nothing"
    )
    return parser


def _describe(plan: retrain.RetrainPlan) -> str:
    return (
        f"model {plan.parent_id} ({plan.parent_name}): {plan.parent_images} parent training "
        f"images + {len(plan.added)} confirmed normals (of {plan.available} available), "
        f"preset {plan.preset}"
        + (
            f", {plan.dropped_from_parent} parent images left out"
            if plan.dropped_from_parent
            else ""
        )
    )


def run(args: argparse.Namespace, settings: StoreSettings) -> int:
    """Plan or queue the retraining; returns the exit code."""
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            user = get_user_by_name(session, args.user)
            if user is None:
                raise StoreError(f"no user named {args.user!r}; use an existing reviewer or admin")
            actor_id = user.id
        request = retrain.RetrainRequest(
            parent_id=args.model,
            batch_ids=args.batches,
            cap=args.cap,
            name=args.name,
            preset=args.preset,
        )
        if args.dry_run:
            print(f"would retrain {_describe(retrain.plan_retraining(factory, request))}")
            return 0
        reports = worker_status.read_reports(settings.data_dir)
        weights = {w.backbone: w for w in worker_status.weights_status(reports)}
        done = retrain.queue_retraining(factory, request, actor_id=actor_id, weights=weights)
    finally:
        engine.dispose()
    queued = done.sent.queued
    print(
        f"queued job {queued.job_id}: model version {queued.model_version_id} retrains "
        f"{_describe(done.plan)}"
    )
    if done.sent.result.problem:
        print(done.sent.result.problem, file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``adn-retrain``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args, StoreSettings.from_env())
    except StoreError as exc:
        print(f"adn-retrain: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
