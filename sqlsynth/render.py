"""Jinja rendering with dbt's context: ref, source, var, env_var, config, this, is_incremental, macros.

One ``Renderer`` per project. Macro files are turned into modules once, all sharing one namespace, so
macros can call each other and see the context functions. The context functions read a per-thread
``RenderState`` (which node is rendering, how refs resolve), so models can render in worker threads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jinja2
import jinja2.compiler
import jinja2.runtime
import jinja2.sandbox  # noqa: F401  (keeps jinja2.exceptions importable under all versions)

from .dbt_compat import Adapter, MacroPackage
from .errors import RenderError, SqlsynthError
from .identifiers import relation
from .masking import add_secret, is_secret_env

# dbt's `{% test name(args) %}` blocks are macros named test_<name>.
# dbt's invocation_id: one per command (process), in every template and in the artifacts' metadata
INVOCATION_ID = str(uuid.uuid4())

_TEST_BLOCK = re.compile(r"{%(-?)\s*test\s+(\w+)\s*\(")
_END_TEST = re.compile(r"{%(-?)\s*endtest\s*(-?)%}")


def preprocess(source: str) -> str:
    source = _TEST_BLOCK.sub(lambda m: "{%" + m.group(1) + " macro test_" + m.group(2) + "(", source)
    return _END_TEST.sub(lambda m: "{%" + m.group(1) + " endmacro " + m.group(2) + "%}", source)


class _MacroReturn(Exception):
    def __init__(self, value: Any):
        self.value = value


class _ReturningMacro(jinja2.runtime.Macro):
    """dbt's `{{ return(x) }}`: the innermost macro call returns x.

    Caught in every macro invocation (not only at our namespace boundary), because a macro that calls
    another macro of the same file calls it directly, not through the namespace.
    """

    def _invoke(self, arguments: list[Any], autoescape: bool) -> Any:
        try:
            return super()._invoke(arguments, autoescape)
        except _MacroReturn as ret:
            return ret.value


class _CodeGenerator(jinja2.compiler.CodeGenerator):
    """Wraps each macro definition so that macros of this environment (only) honour return()."""

    def macro_def(self, macro_ref: Any, frame: Any) -> None:
        self.write("environment.returning_macro(")
        super().macro_def(macro_ref, frame)
        self.write(")")


class _Environment(jinja2.Environment):
    code_generator_class = _CodeGenerator

    @staticmethod
    def returning_macro(macro: jinja2.runtime.Macro) -> jinja2.runtime.Macro:
        macro.__class__ = _ReturningMacro
        return macro


@dataclass
class Relation:
    """A database relation as rendered into SQL; attributes follow dbt's (schema, identifier, name)."""

    schema: str
    identifier: str
    database: str | None = None

    @property
    def name(self) -> str:
        return self.identifier

    def __str__(self) -> str:
        return relation(self.schema, self.identifier)

    def render(self) -> str:
        return str(self)


@dataclass
class RenderState:
    """Everything that differs between renders: the node, how refs resolve, incremental state."""

    node_name: str
    path: str
    resolve_ref: Callable[[str, str | None], Any]
    resolve_source: Callable[[str, str], Any]
    this: Any = None
    incremental: bool = False
    vars: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    refs: list[str] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)


class _ThisProxy:
    """`{{ this }}` for whichever node is rendering on this thread."""

    def __init__(self, renderer: Renderer):
        self._renderer = renderer

    def _target(self) -> Any:
        return self._renderer.state().this

    def __str__(self) -> str:
        return str(self._target())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __html__(self) -> str:  # jinja autoescape protocol, harmless otherwise
        return str(self)


class Renderer:
    def __init__(self, project_name: str, macro_files: dict[str, str], builtin_macros: dict[str, str],
                 target_info: dict[str, Any], packages: tuple[str, ...] | list[str] = ()):
        self.project_name = project_name
        self._local = threading.local()
        self.env = _Environment(
            loader=jinja2.FunctionLoader(self._load), undefined=jinja2.StrictUndefined,
            extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"], keep_trailing_newline=True)
        self.env.filters.update(as_bool=_as_bool, as_number=_as_number, as_text=str, as_native=lambda x: x)
        self._sources: dict[str, str] = {}
        self.namespace: dict[str, Any] = DbtContext(self).namespace(target_info)
        self.macros: dict[str, str] = {}  # macro name -> file that defines it
        # Built-ins first so a project macro with the same name overrides them (as in dbt).
        for path, text in builtin_macros.items():
            self._load_macro_file(path, text)
        builtins = {name: self.namespace[name] for name in self.macros}
        self.namespace["adapter"] = Adapter(self.namespace, builtins)
        self.namespace["dbt"] = MacroPackage("dbt", builtins, builtins, provided=True)
        for package in packages:  # dbt_utils.x resolves to a project macro x, if the project has one
            self.namespace.setdefault(package, MacroPackage(package, self.namespace, self.macros, provided=False))
        for path, text in macro_files.items():
            self._load_macro_file(path, text)

    # -- templates -------------------------------------------------------------------------
    def _load(self, name: str):
        source = self._sources[name]
        # Re-compiled only when the text under this name changes (e.g. test arguments of one file).
        return source, name, lambda: self._sources.get(name) == source

    def _template(self, path: str, text: str) -> jinja2.Template:
        self._sources[path] = preprocess(text)
        try:
            return self.env.get_template(path)
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"Jinja syntax error: {exc.message}", path=path, line=exc.lineno,
                              hint="check the {{ }} / {% %} tags on that line") from None

    def _load_macro_file(self, path: str, text: str) -> None:
        template = self._template(path, text)
        try:
            module = template.make_module(vars=self.namespace, shared=True)
        except Exception as exc:  # top-level code of a macro file failed
            raise self._render_error(exc, path) from None
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, jinja2.runtime.Macro):
                self.namespace[name] = value
                self.macros[name] = path

    def has_macro(self, name: str) -> bool:
        return name in self.macros

    def macro_file_text(self, name: str) -> str:
        """The (preprocessed) text of the file that defines macro ``name``; empty when none does."""
        return self._sources.get(self.macros.get(name, ""), "")

    # -- state -------------------------------------------------------------------------------
    def state(self) -> RenderState:
        state = getattr(self._local, "state", None)
        if state is None:
            raise RenderError("ref()/var()/config() used outside a model render")
        return state

    def render(self, path: str, text: str, state: RenderState, context: dict[str, Any] | None = None) -> str:
        """Render one model/test file; errors carry the file and the template line. `context` replaces
        names for this render only (a unit test's macro overrides)."""
        template = self._template(path, text)
        self._local.state = state
        try:
            return template.render({**self.namespace, **context} if context else self.namespace)
        except SqlsynthError as exc:
            if exc.path is None or exc.line is None:
                exc.path = exc.path or path
                exc.line = exc.line or _template_line(exc, path)
                exc.args = (exc.format(),)
            raise
        except Exception as exc:
            raise self._render_error(exc, path) from None
        finally:
            self._local.state = None

    def render_nested(self, text: str) -> str:
        """Render a small template (e.g. a source's external_location) inside the current render."""
        return self.env.from_string(text).render(self.namespace)

    def call_macro(self, name: str, state: RenderState, **kwargs) -> str:
        """Call a macro (e.g. a generic test) as if from a template of ``state.path``."""
        self._local.state = state
        try:
            return str(self.namespace[name](**kwargs))
        except SqlsynthError:
            raise
        except Exception as exc:
            raise self._render_error(exc, self.macros.get(name, state.path)) from None
        finally:
            self._local.state = None

    def _render_error(self, exc: Exception, path: str) -> RenderError:
        if isinstance(exc, jinja2.UndefinedError):
            message = f"undefined name: {exc.message}"
            hint = "define it with {% set %}, pass it to the macro, or use var('name')"
        elif isinstance(exc, jinja2.TemplateSyntaxError):
            return RenderError(f"Jinja syntax error: {exc.message}", path=exc.filename or path,
                               line=exc.lineno)
        else:
            message = f"{type(exc).__name__}: {exc}"
            hint = None
        frame_path, line = _innermost_template_frame(exc, set(self._sources))
        return RenderError(message, path=frame_path or path, line=line, hint=hint)

_MISSING = object()


class DbtContext:
    """dbt's context functions for one Renderer. Each reads the render state of the calling thread,
    so one namespace serves every model rendering in parallel."""

    def __init__(self, renderer: Renderer):
        self._renderer = renderer

    def namespace(self, target_info: dict[str, Any]) -> dict[str, Any]:
        """What templates and macros see as globals."""
        return {
            "ref": self.ref, "source": self.source, "var": self.var, "env_var": self.env_var,
            "config": _ConfigProxy(self.config, self._renderer), "this": _ThisProxy(self._renderer),
            "is_incremental": self.is_incremental, "return": self.do_return, "log": self.log, "print": self.log,
            "exceptions": _Namespace({"raise_compiler_error": self.raise_compiler_error,
                                      "warn": lambda message: self.log(message, info=True)}),
            "execute": True, "target": _Namespace(target_info), "project_name": self._renderer.project_name,
            "run_started_at": dt.datetime.now(dt.timezone.utc), "invocation_id": INVOCATION_ID,
            "modules": _Namespace({"datetime": dt, "re": re, "json": json}),
            "tojson": json.dumps, "fromjson": json.loads, "zip": zip,
        }

    def ref(self, *args, **_kwargs):
        if len(args) not in (1, 2) or not all(isinstance(a, str) for a in args):
            raise RenderError("ref() takes a model name: ref('name') or ref('package', 'name')")
        package, name = (None, args[0]) if len(args) == 1 else args
        if package is not None and package != self._renderer.project_name:
            # dbt resolves ref('pkg', 'x') in an installed package; sqlsynth installs none, so a silent
            # fall-back to this project's 'x' could read the wrong table.
            raise RenderError(f"ref('{package}', '{name}'): no package '{package}' (sqlsynth installs no dbt "
                              f"packages); use ref('{name}') or ref('{self._renderer.project_name}', '{name}')")
        state = self._renderer.state()
        state.refs.append(name)
        return state.resolve_ref(name, package)

    def source(self, source_name: str, table_name: str):
        state = self._renderer.state()
        state.sources.append((source_name, table_name))
        return state.resolve_source(source_name, table_name)

    def var(self, name: str, default: Any = _MISSING):
        state = self._renderer.state()
        if name in state.vars:
            return state.vars[name]
        if default is not _MISSING:
            return default
        raise RenderError(f"undefined var '{name}'",
                          hint=f"add '{name}:' under vars: in project.yml, or pass --vars '{{\"{name}\": ...}}'")

    @staticmethod
    def env_var(name: str, default: Any = _MISSING, secret: bool = False):
        value = os.environ.get(name, default)
        if value is not _MISSING:
            if secret or is_secret_env(name):  # masked wherever sqlsynth prints or writes it
                add_secret(str(value))
            return value
        raise RenderError(f"environment variable {name} is not set",
                          hint=f"export {name}=... or write env_var('{name}', 'default')")

    def config(self, *args, **kwargs) -> str:
        if args:
            if len(args) == 1 and isinstance(args[0], dict):
                kwargs = {**args[0], **kwargs}
            else:
                raise RenderError("config() takes keyword arguments, e.g. config(materialized='table')")
        self._renderer.state().config.update(kwargs)
        return ""

    def is_incremental(self) -> bool:
        return self._renderer.state().incremental

    @staticmethod
    def do_return(value: Any):
        raise _MacroReturn(value)

    @staticmethod
    def log(message: Any, info: bool = False) -> str:
        if info:
            from .console import console
            console.print(f"  [dim]{message}[/dim]")
        return ""

    @staticmethod
    def raise_compiler_error(message: str):
        raise RenderError(message)


class _ConfigProxy:
    """`config(...)` sets node config; `config.get('key', default)` reads it (dbt supports both)."""

    def __init__(self, setter: Callable, renderer: Renderer):
        self._setter = setter
        self._renderer = renderer

    def __call__(self, *args, **kwargs):
        return self._setter(*args, **kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        return self._renderer.state().config.get(key, default)


class _Namespace:
    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)

    def __str__(self) -> str:
        return str(self.__dict__.get("name", ""))


def _as_bool(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "y", "on")


def _as_number(value: Any) -> float | int:
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


def _innermost_template_frame(exc: BaseException, template_names: set[str]) -> tuple[str | None, int | None]:
    """Jinja rewrites tracebacks so template frames carry the template's name and source line."""
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in template_names:
            found = (frame.filename, frame.lineno)
    return found


def _template_line(exc: BaseException, path: str) -> int | None:
    return _innermost_template_frame(exc, {path})[1]
