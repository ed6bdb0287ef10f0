"""A local stand-in for a Kubernetes API server plus the KubeRay v1.7 operator, for tests and demos.

Product code never imports this package. Entry points: :class:`kuberay_provider.local.stack.LocalStack`
and the ``kuberay-local`` command line (:mod:`kuberay_provider.local.cli`).

Modules: ``apiserver`` (aiohttp API server, store, watches, logs), ``faults`` (request log records, fault
injection), ``schema`` (CRD defaulting/validation/CEL), ``resources`` (served types, discovery), ``selectors``
(label/field selectors, patches), ``controller`` (loops + garbage collector), ``rayjobs`` (RayJob state machine),
``validation`` (operator-side checks), ``clusters`` (RayCluster reconcile), ``submitter`` (submitter Job/Pods),
``rayruntime`` (real local Ray processes), ``jobapi`` (Ray job submission client), ``kube`` (controller's client),
``pods`` (pod statuses), ``kueue`` (Kueue-like admission), ``stack`` (LocalStack), ``cli``.

Simulation knobs (NOT KubeRay features): annotation ``kuberay-local.dev/simulate`` on a RayJob (copied to its
RayCluster) or on a RayCluster:

- ``image-pull-error``: the head container waits with ``ErrImagePull`` then ``ImagePullBackOff``; never ready.
- ``unschedulable``: the head pod stays Pending, ``PodScheduled=False``/``Unschedulable``; never ready.
- ``submitter-failure``: every submitter pod exits 1, so the submitter Job fails after ``backoffLimit + 1`` (3)
  pods and the RayJob ends ``(Failed, ·, SubmissionFailed)`` with the ``BackoffLimitExceeded`` message.

Capacity: at most ``max_clusters`` real Ray clusters run at once; further heads stay Pending/Unschedulable
("Insufficient cpu"), like a full node pool. RayJobs labelled ``kueue.x-k8s.io/queue-name`` are admitted by a
Kueue-like admission (``kueue``) with a quota of ``max_clusters`` admitted RayJobs: they stay suspended until then.
"""
