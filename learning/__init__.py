"""The retraining loop: the job queue, the model registry, the pipeline from a data snapshot to
a judged candidate, the release gate and maturity report, training, and the worker that runs
the jobs. Used by the admin API's routes and by the operators' CLI; it never imports either."""
