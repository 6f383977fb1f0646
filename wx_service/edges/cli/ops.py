"""Running the service: the database schema, the job worker and the scheduler."""
from __future__ import annotations

import click
from flask import Flask

from wx_service.ground.db import upgrade_database


def register(app: Flask) -> None:
    @app.cli.command("db-upgrade")
    def db_upgrade() -> None:
        """Apply all migrations to DATABASE_URL."""
        upgrade_database(app.extensions["wx"].settings.DATABASE_URL)
        click.echo("database is at the latest migration")

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
    def worker(burst: bool) -> None:
        """Run the background job worker (RQ, with the scheduler that runs retries)."""
        wx = app.extensions["wx"]
        if wx.settings.JOB_QUEUE != "rq":
            raise click.ClickException("JOB_QUEUE is inprocess: jobs run inside the web process; "
                                       "set REDIS_URL (and JOB_QUEUE=rq) to run a separate worker")
        from rq import Worker

        from wx_service.ground.queue import QUEUE_NAME, bind_worker_app

        bind_worker_app(app)  # the app the forked work-horses run their jobs in
        # maintenance_interval: how often an idle worker tries to take over RQ's scheduler lock
        # (delayed jobs and retries) from a worker that died without releasing it; RQ's default
        # is 10 minutes.
        Worker([QUEUE_NAME], connection=wx.redis, maintenance_interval=30).work(with_scheduler=True, burst=burst)

    @app.cli.command("scheduler")
    def scheduler() -> None:
        """Run RQ's cron scheduler: the daily jobs and the payment sweeps (store time, Asia/Shanghai)."""
        wx = app.extensions["wx"]
        if wx.settings.JOB_QUEUE != "rq":
            raise click.ClickException("JOB_QUEUE is inprocess: there is no shared queue to schedule onto; "
                                       "set REDIS_URL (and JOB_QUEUE=rq) and run workers")
        from wx_service.edges.schedule import DAILY_JOBS, SWEEP_JOBS, build_scheduler

        cron = build_scheduler(wx.redis)
        for name, spec, path in DAILY_JOBS + SWEEP_JOBS:
            click.echo(f"{name}: '{spec}' Asia/Shanghai -> {path}")
        cron.start()
