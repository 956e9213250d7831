"""The worker: connects to Temporal and registers every workflow and activity."""
from __future__ import annotations

import asyncio
import concurrent.futures

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities import all_activities
from activities.heartbeat import HeartbeatInterceptor
from config import connect_temporal, get_settings
from store.db import migrate
from workflows import all_workflows

log = structlog.get_logger("yingji.worker")


def build_worker(client: Client, task_queue: str | None = None) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or get_settings().task_queue,
        workflows=all_workflows(),
        activities=all_activities(),
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=64),
        max_concurrent_activities=64,
        interceptors=[HeartbeatInterceptor()],  # a killed worker's activities are retried within seconds
    )


async def run_worker(stop: asyncio.Event | None = None) -> None:
    settings = get_settings()
    migrate()
    client = await connect_temporal(settings)
    worker = build_worker(client)
    log.info("worker started", task_queue=settings.task_queue, temporal=settings.temporal_address)
    async with worker:
        await (stop or asyncio.Event()).wait()


def main() -> None:
    try:
        asyncio.run(run_worker())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
