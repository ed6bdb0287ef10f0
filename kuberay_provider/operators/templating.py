"""Only the fields that may name a template *file* are loaded as one (Airflow applies ``template_ext`` to all).

Airflow's templater treats every templated string ending in a ``template_ext`` suffix as a file name, in every
templated field and at every nesting level: ``entrypoint="python train.py --config conf.yaml"`` would be looked up
as a Jinja template file and fail with ``TemplateNotFound``. :class:`TemplateFileFields` narrows that to the
fields listed in ``template_file_fields`` (for :class:`~kuberay_provider.operators.rayjob.RayJobOperator`: only
``manifest``), through the templater's public hooks — :meth:`resolve_template_files` (called when the DAG is
parsed) and :meth:`render_template` (called per value, nested values included, for plain and mapped tasks) — which
Airflow 2.10 and 3.x share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TemplateFile(str):
    """A templated field's value that names a template file (``rayjob.yaml``), as opposed to a string that merely
    ends in ``.yaml``. Only values of this type are ever loaded from the DAG's template search path."""

    __slots__ = ()


def as_template_file(value: Any, extensions: Sequence[str]) -> Any:
    """``value`` marked as a :class:`TemplateFile` when it is one line ending in one of ``extensions``; otherwise
    unchanged (a YAML document, a mapping, an XComArg...)."""
    if isinstance(value, str) and not isinstance(value, TemplateFile):
        text = value.strip()
        if text and "\n" not in text and text.endswith(tuple(extensions)):
            return TemplateFile(text)
    return value


class TemplateFileFields:
    """Mixin for a ``BaseOperator`` subclass: ``template_ext`` applies to ``template_file_fields`` only.

    The operator marks those fields' values with :func:`as_template_file` in ``__init__``; every other string,
    in any field or nested in a mapping or list, renders as a string even when it ends in ``.yaml``.
    """

    template_file_fields: Sequence[str] = ()

    def resolve_template_files(self) -> None:
        """Replace each template-file field by the file's source (what Airflow does, for those fields only)."""
        for field in self.template_file_fields:
            content = getattr(self, field, None)
            if isinstance(content, TemplateFile):
                env = self.get_template_env()  # type: ignore[attr-defined]
                try:
                    setattr(self, field, env.loader.get_source(env, content)[0])
                except Exception:
                    # Like Airflow: keep the file name; rendering then reports the missing file (TemplateNotFound).
                    self.log.exception("Failed to resolve template field %r", field)  # type: ignore[attr-defined]
        self.prepare_template()  # type: ignore[attr-defined]

    def render_template(self, content: Any, context: Any, jinja_env: Any = None, seen_oids: set[int] | None = None) -> Any:
        """Render ``content``; a string is loaded as a file only if it is a :class:`TemplateFile`."""
        if isinstance(content, str) and not isinstance(content, TemplateFile) \
                and content.endswith(tuple(self.template_ext)):  # type: ignore[attr-defined]
            if seen_oids is not None and id(content) in seen_oids:
                return content
            env = jinja_env or self.get_template_env()  # type: ignore[attr-defined]
            return self._render(env.from_string(content), context)  # type: ignore[attr-defined]
        return super().render_template(content, context, jinja_env, seen_oids)  # type: ignore[misc]
