"""Running a sweep's runs on Ray (https://docs.ray.io): one task per run, each with its own CPU/GPU
request, results handed back to the sweep as tasks finish.

Ray is an optional extra: `pip install "pixelrnn-tf[cluster]"`. Without --address a local Ray
instance is started on this machine (and stopped afterwards); with one, the driver joins that
cluster (`ray start --head` on one machine, `ray start --address HEAD:6379` on the others, the
package and the data sets installed on every node, and the sweep's --out folder on storage that
every node sees).
"""

import os
import sys

from pixelrnn_tf.config import ConfigError

DEFAULT_RESOURCES = {"num_cpus": 1, "num_gpus": 0}


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray, an optional extra: pip install \"pixelrnn-tf[cluster]\"."
        ) from None
    return ray


def _remote_run_job(job):
    # Imported in the worker: the worker process sets up the package's Keras 2 on first import.
    from training.sweep import run_job

    return run_job(job)


def run(jobs, finished, address=None, resources=None):
    """Run `jobs` as Ray tasks; finished(job, rows) is called in the driver as each one ends."""
    if not jobs:
        return
    ray = _import_ray()
    resources = {**DEFAULT_RESOURCES, **(resources or {})}
    unknown = set(resources) - set(DEFAULT_RESOURCES)
    if unknown:
        raise ConfigError(f"Unknown Ray resource(s) {sorted(unknown)}; a run asks for num_cpus and num_gpus.")
    started_here = not ray.is_initialized()
    if started_here:
        # Workers unpickle a setting's evaluate function by module name; on a local instance they
        # get the driver's import path so that functions of the caller's own modules resolve too.
        runtime_env = None if address else {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
        ray.init(
            address=address,
            runtime_env=runtime_env,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        task = ray.remote(**resources)(_remote_run_job)
        futures = {task.remote(job): job for job in jobs}
        while futures:
            done, _ = ray.wait(list(futures), num_returns=1)
            job = futures.pop(done[0])
            finished(job, ray.get(done[0]))
    finally:
        if started_here:
            ray.shutdown()
