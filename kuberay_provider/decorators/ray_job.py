"""``@task.ray_job``: a TaskFlow function that runs as the driver of a transient RayJob.

.. code-block:: python

    from airflow.sdk import task  # Airflow 2: from airflow.decorators import task

    @task.ray_job(worker_groups=[{"name": "cpu", "replicas": 2, "cpu": 2, "memory": "4Gi"}],
                  runtime_env={"pip": ["xgboost"]})
    def train(table: str, rounds: int) -> dict:
        import ray  # import inside the function: only its own body reaches the cluster

        ray.init()
        ...
        return {"auc": 0.97}

    metrics = train("churn.features", 100)  # XComArgs and .expand()/.partial() work as for any @task

The function's source (its body, decorators removed) and its JSON arguments travel, compressed, inside the RayJob's
entrypoint; the driver needs nothing but the standard library on the cluster (``kuberay_provider.ray_task``), so a
stock ``rayproject/ray`` image runs it and nothing of Airflow is there. The function's JSON return value comes back
through the driver log (the K8sJobMode submitter pod's log, which outlives the cluster) and becomes the task's
``return_value`` XCom, in deferrable mode and after a re-attach as well. A function that raises fails the task with
the driver's Python traceback in the failure message. Every :class:`~.RayJobOperator`
parameter is accepted (``entrypoint`` excepted: the function is the entrypoint).
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kuberay_provider import ray_task
from kuberay_provider.compat import AirflowException, DecoratedOperator, airflow_major_version, task_decorator_factory
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.hooks.pods import LogTail
from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.params import as_int, resolved_at_runtime

if TYPE_CHECKING:
    from kuberay_provider.compat import Context
    from kuberay_provider.hooks.kuberay import KubeRayHook

DEFAULT_RETURN_VALUE_LIMIT_BYTES = 64 * 1024
#: a shell word (the ``python -c`` code) must stay below Linux's 128 KiB MAX_ARG_STRLEN with room to spare
MAX_ENTRYPOINT_BYTES = 100 * 1024
#: how many of the driver log's last lines are searched for the result markers
RESULT_SCAN_LINES = 2000
_PLACEHOLDER_ENTRYPOINT = "python -c pass"  # replaced in execute, once the arguments are rendered
#: context keys Airflow would fill in for a local @task; they do not exist on a Ray cluster
_CONTEXT_KEYS = frozenset({
    "ti", "task_instance", "dag", "dag_run", "ds", "ds_nodash", "ts", "ts_nodash", "logical_date", "execution_date",
    "data_interval_start", "data_interval_end", "params", "conf", "macros", "run_id", "task", "var", "conn",
    "prev_data_interval_start_success", "prev_data_interval_end_success", "templates_dict", "triggering_asset_events",
    "inlets", "outlets", "outlet_events", "inlet_events", "map_index_template", "test_mode", "expanded_ti_count",
})


def function_source(python_callable: Callable[..., Any]) -> str:
    """The function's own definition, decorators removed, as it will be defined on the cluster.

    Refuses what cannot be shipped as source: lambdas, functions that close over local variables of an enclosing
    function, async functions, and functions whose source Python cannot read.
    """
    name = getattr(python_callable, "__qualname__", repr(python_callable))
    code = getattr(python_callable, "__code__", None)
    if code is None or getattr(python_callable, "__name__", "") == "<lambda>":
        raise InvalidParameterError("python_callable", name, "must be a function defined with def (not a lambda)")
    if code.co_freevars:
        raise InvalidParameterError(
            "python_callable", name,
            f"uses variables of an enclosing function ({', '.join(code.co_freevars)}); only the function's own "
            "source reaches the Ray cluster: pass them as arguments",
        )
    try:
        source = textwrap.dedent(inspect.getsource(python_callable))
    except (OSError, TypeError) as exc:
        raise InvalidParameterError("python_callable", name, f"its source cannot be read ({exc})") from None
    tree = ast.parse(source)
    node = tree.body[0] if tree.body else None
    if isinstance(node, ast.AsyncFunctionDef):
        raise InvalidParameterError("python_callable", name, "must be a plain function, not async")
    if not isinstance(node, ast.FunctionDef):
        raise InvalidParameterError("python_callable", name, "must be a function defined with def")
    node.decorator_list = []
    return ast.unparse(ast.Module(body=[node], type_ignores=[])) + "\n"


def _runner_source() -> str:
    return inspect.getsource(ray_task)


def build_entrypoint(payload: Mapping[str, Any]) -> str:
    """``python -c "<bootstrap>"``: decompresses the runner and calls it with the payload.

    The code holds no double quote, ``$``, backquote, backslash or ``!``, so it reads the same after KubeRay's
    submitter shell and ``ray job submit``'s re-quoting (two shells) as after one.
    """
    code = (f"import base64,json,zlib;exec(json.loads(zlib.decompress(base64.b64decode('{ray_task.encode(_runner_source())}'))));"
            f"main('{ray_task.encode(dict(payload))}')")
    return f'python -c "{code}"'


class RayJobDecoratedOperator(DecoratedOperator, RayJobOperator):
    """Runs a TaskFlow function as the driver of a transient RayJob; its return value is the task's XCom.

    Created by ``@task.ray_job(...)``: takes every :class:`~.RayJobOperator` parameter except ``entrypoint``.

    :param python_callable: the decorated function. Only its own source reaches the cluster: import what it needs
        inside its body; it must not close over variables of an enclosing function or take Airflow context
        arguments (pass values such as ``"{{ ds }}"`` as arguments instead).
    :param op_args: positional arguments (JSON-serialisable after rendering; XComArgs allowed). (templated)
    :param op_kwargs: keyword arguments (JSON-serialisable after rendering; XComArgs allowed). (templated)
    :param return_value_limit_bytes: largest JSON return value accepted (default 64 KiB); a larger one fails the
        task: return a reference (a table, a ``gs://`` URI) to large results.
    """

    custom_operator_name = "@task.ray_job"
    template_fields: Sequence[str] = (
        *(f for f in RayJobOperator.template_fields if f != "entrypoint"), "op_args", "op_kwargs",
    )
    template_fields_renderers = {**RayJobOperator.template_fields_renderers, "op_args": "py", "op_kwargs": "py"}

    def __init__(self, *, python_callable: Callable[..., Any], op_args: Sequence[Any] | None = None,
                 op_kwargs: Mapping[str, Any] | None = None,
                 return_value_limit_bytes: int = DEFAULT_RETURN_VALUE_LIMIT_BYTES, **kwargs: Any) -> None:
        if "entrypoint" in kwargs:
            raise InvalidParameterError("entrypoint", kwargs["entrypoint"],
                                        "is the decorated function itself for @task.ray_job")
        context_parameters = sorted(set(inspect.signature(python_callable).parameters) & _CONTEXT_KEYS)
        if context_parameters:
            raise InvalidParameterError(
                "python_callable", python_callable.__qualname__,
                f"takes Airflow context arguments ({', '.join(context_parameters)}), which do not exist on the Ray "
                "cluster: pass the values as arguments instead, e.g. train(day='{{ ds }}')",
            )
        self._source = function_source(python_callable)
        self.return_value_limit_bytes = as_int(return_value_limit_bytes, "return_value_limit_bytes", minimum=1)
        super().__init__(python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs,
                         entrypoint=_PLACEHOLDER_ENTRYPOINT, **kwargs)
        mode = self.submission_mode
        if not resolved_at_runtime(mode) and mode not in (None, "K8sJobMode"):
            raise InvalidParameterError("submission_mode", mode, "must be K8sJobMode for @task.ray_job: the return "
                                        "value is read from the submitter pod's log")

    def _payload(self) -> dict[str, Any]:
        args, kwargs = list(self.op_args or []), dict(self.op_kwargs or {})
        for where, value in [*((f"op_args[{i}]", v) for i, v in enumerate(args)),
                             *((f"op_kwargs[{k!r}]", v) for k, v in kwargs.items())]:
            try:
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise InvalidParameterError(where, type(value).__name__,
                                            f"must be JSON-serialisable to reach the Ray cluster ({exc})") from None
        return {"task_id": self.task_id, "name": self.python_callable.__name__, "source": self._source,
                "args": args, "kwargs": kwargs, "limit_bytes": self.return_value_limit_bytes}

    def execute(self, context: Context) -> Any:
        """Render the function call into the entrypoint, then run it as :class:`~.RayJobOperator` does."""
        entrypoint = build_entrypoint(self._payload())
        if len(entrypoint.encode()) > MAX_ENTRYPOINT_BYTES:
            raise InvalidParameterError(
                "op_args/op_kwargs", f"{len(entrypoint.encode())} bytes with the function's source",
                f"must fit the {MAX_ENTRYPOINT_BYTES} bytes of a RayJob entrypoint: pass large data by reference")
        self.entrypoint = entrypoint
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any], **kwargs: Any) -> Any:
        value = super().execute_complete(context, event, **kwargs)
        if self.multiple_outputs and airflow_major_version() < 3 and isinstance(value, dict):
            for key, item in value.items():  # Airflow 3's task runner does this itself
                context["ti"].xcom_push(key=str(key), value=item)
        return value

    def _complete(self, context: Context, event: Mapping[str, Any], *, reattached: bool,
                  hook: KubeRayHook | None) -> Any:
        summary = super()._complete(context, event, reattached=reattached, hook=hook)  # raises unless it succeeded
        context["ti"].xcom_push(key="rayjob", value=summary)
        tail = LogTail(RESULT_SCAN_LINES)
        (hook or self.hook()).read_driver_log_tail(summary["name"], summary["namespace"], tail)
        try:
            return ray_task.parse_result(tail.lines)
        except ray_task.ResultError as exc:
            raise AirflowException(f"RayJob {summary['namespace']}/{summary['name']} succeeded but {exc}") from None

    def _emit_driver_line(self, line: str) -> None:
        if ray_task.RESULT_MARKER not in line:  # the result reaches XCom, not the task log
            super()._emit_driver_line(line)


def ray_job_task(python_callable: Callable[..., Any] | None = None, multiple_outputs: bool | None = None,
                 **kwargs: Any) -> Any:
    """``@task.ray_job``: run the decorated function as the driver of a transient RayJob.

    :param python_callable: the function (when used without parentheses).
    :param multiple_outputs: push each key of a returned dict as its own XCom.
    :param kwargs: :class:`~.RayJobOperator` parameters (``image``, ``head``, ``worker_groups``, ``runtime_env``,
        ``deferrable``, ...) and ``return_value_limit_bytes``.
    """
    return task_decorator_factory(python_callable=python_callable, multiple_outputs=multiple_outputs,
                                  decorated_operator_class=RayJobDecoratedOperator, **kwargs)
