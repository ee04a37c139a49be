"""The dask.distributed client of ``predict --scheduler`` / ``--workers``."""

from __future__ import annotations

import argparse
from typing import Any

from .progress import status


def start_client(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """A dask.distributed Client for --scheduler / --workers (else None) and what to close."""
    if not args.scheduler and args.workers is None:
        return None, []
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        from ..unet.data import InputError

        raise InputError(
            "--scheduler/--workers need dask.distributed: pip install 'napari-unet-explorer[dask]'"
        ) from err
    if args.scheduler:
        client = Client(args.scheduler, timeout="20s")
        status(f"connected to the dask scheduler at {args.scheduler}", args)
        return client, [client]
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        processes=True,
        dashboard_address=None,
    )
    client = Client(cluster)
    status(f"started a local dask cluster: {args.workers} workers", args)
    return client, [client, cluster]
