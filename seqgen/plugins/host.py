"""The plugin manager: loads the `seqgen` entry-point group and collects tokenizers.

A broken plugin fails narrowly: it is disabled (or loses the one tokenizer name that clashes)
with one warning line naming it, and every other plugin keeps working. Built-in plugins (the
`seqgen` distribution's own entry points) win every name clash; between other plugins the one
registered first wins, and `load_entry_points` registers them in order of plugin name.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from importlib.metadata import distributions

import pluggy

from seqgen.errors import PluginError
from seqgen.plugins import hookspecs
from seqgen.plugins.boundary import TRACE_ENV, tracing
from seqgen.plugins.tokenizer import Option, Tokenizer

GROUP = "seqgen"
BUILTIN_DIST = "seqgen"  # the distribution whose entry points are the built-in plugins
PLUGINS_ENV = "SEQGEN_PLUGINS"  # "all" (default) or "builtin": which plugins get_plugin_manager loads
PLUGIN_CHOICES = ("all", "builtin")
OUTPUTS = ("text", "midi")

__all__ = ["TRACE_ENV", "PLUGINS_ENV", "PluginInfo", "PluginManager", "get_plugin_manager", "get_tokenizer",
           "get_tokenizers", "list_plugins", "make_plugin_manager", "tokenizer_from_dict"]


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _warn(plugin: str, problem: str) -> None:
    warnings.warn(f"seqgen plugin {plugin!r}: {problem}", stacklevel=3)


class _NotLoaded(PluginError):
    """A plugin whose hook implementations do not fit seqgen's hook specifications."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"seqgen plugin {name!r} is not loaded: {why}")
        self.why = why


@dataclass
class _Registry:
    """What the plugins registered, checked: usable tokenizers and each plugin's problems."""

    tokenizers: dict[str, type[Tokenizer]] = field(default_factory=dict)  # name -> class
    owner: dict[str, str] = field(default_factory=dict)  # tokenizer name -> plugin
    disabled: dict[str, str] = field(default_factory=dict)  # plugin -> why
    problems: dict[str, list[str]] = field(default_factory=dict)  # plugin -> what went wrong
    lost: dict[str, str] = field(default_factory=dict)  # tokenizer name of a disabled plugin -> plugin


class PluginManager(pluggy.PluginManager):
    """pluggy's manager for project "seqgen", remembering each plugin's distribution and
    version, the plugins that could not be registered, and every plugin's problems."""

    def __init__(self, trace: bool | None = None) -> None:
        super().__init__(GROUP)
        self.add_hookspecs(hookspecs)
        self.versions: dict[str, str] = {}
        self.dists: dict[str, str] = {}  # plugin name -> distribution name
        self.builtin: set[str] = set()  # names of the built-in plugins
        self.failed: dict[str, str] = {}  # plugin that could not be registered -> why
        self.hook_problems: dict[str, list[str]] = {}  # plugin -> unknown or undecorated hooks
        self._registry: _Registry | None = None
        self._lock = threading.Lock()  # one collection (and one set of warnings) under concurrent lookups
        if tracing() if trace is None else trace:
            self.enable_plugin_tracing()

    # -- registration ----------------------------------------------------------------------

    def load_entry_points(self, only_builtin: bool = False) -> None:
        """Register the modules of the `seqgen` entry-point group: the built-in ones first,
        then (unless `only_builtin`) the others in order of plugin name. One that fails to
        import or register is skipped with a warning naming it and recorded in `failed`."""
        found, seen = [], set()
        for dist in distributions():
            eps = [ep for ep in dist.entry_points if ep.group == GROUP]
            if not eps:  # its metadata is not parsed: doing so for every installed one costs ~0.03-0.4 s
                continue
            dist_name = dist.metadata["Name"] or "?"
            if dist_name.lower() in seen:  # the same distribution twice on sys.path
                continue
            seen.add(dist_name.lower())
            builtin = dist_name.lower() == BUILTIN_DIST
            if only_builtin and not builtin:
                continue
            found += [(not builtin, ep.name, ep, dist) for ep in eps]
        for not_builtin, name, ep, dist in sorted(found, key=lambda item: item[:2]):
            if self.is_blocked(name):
                continue
            where = f"{ep.value}, from {dist.metadata['Name']} {dist.version}"
            if self.has_plugin(name) or name in self.failed:
                self._fail(name, f"the plugin name is already used by another package; {where} is not loaded",
                           dist.version)
                continue
            try:
                plugin = ep.load()
            except Exception as e:  # a broken third-party plugin must not break seqgen
                self._fail(name, f"failed to load ({where}): {type(e).__name__}: {_one_line(e)}", dist.version)
                continue
            self.versions[name] = dist.version
            self.dists[name] = dist.metadata["Name"]
            if not not_builtin:
                self.builtin.add(name)
            try:
                self.register(plugin, name=name)
            except _NotLoaded as e:
                self._fail(name, f"not loaded ({where}): {e.why}", dist.version)

    def _fail(self, name: str, why: str, version: str | None = None) -> None:
        self.failed[name] = why
        if version is not None:
            self.versions.setdefault(name, version)
        _warn(name, why)

    def register(self, plugin, name: str | None = None) -> str | None:
        """pluggy's register; a hook implementation that does not fit its specification is a
        one-line PluginError, and unknown or undecorated hooks are reported as warnings."""
        try:
            name = super().register(plugin, name)
        except pluggy.PluginValidationError as e:
            raise _NotLoaded(name or self.get_canonical_name(plugin),
                             f"{_one_line(e)} (seqgen's hooks: {', '.join(self._spec_signatures())})") from None
        if name is None:  # blocked
            return None
        self._registry = None
        self.trace.root.get("seqgen")("registered plugin", repr(name), getattr(plugin, "__name__", plugin))
        problems = self._hook_problems(plugin)
        self.hook_problems[name] = problems
        for problem in problems:
            _warn(name, problem)
        return name

    def unregister(self, plugin=None, name=None):
        self._registry = None
        return super().unregister(plugin, name)

    def _spec_signatures(self) -> list[str]:
        return [f"{name}{inspect.signature(getattr(hookspecs, name))}" for name in sorted(vars(self.hook))
                if not name.startswith("_") and getattr(self.hook, name).has_spec()]

    def _hook_problems(self, plugin) -> list[str]:
        """Hook implementations seqgen will never call: unknown names, missing @hookimpl."""
        specs = sorted(name for name in vars(self.hook) if not name.startswith("_") and
                       getattr(self.hook, name).has_spec())
        problems = []
        for caller in self.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            impl = next(i for i in caller.get_hookimpls() if i.plugin is plugin)
            if impl.optionalhook:
                continue
            close = difflib.get_close_matches(caller.name, specs, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"seqgen's hooks are {', '.join(specs)}"
            problems.append(f"unknown hook {caller.name!r} is never called ({hint})")
        for spec in specs:
            f = inspect.getattr_static(plugin, spec, None)
            if f is not None and callable(getattr(plugin, spec)) and self.parse_hookimpl_opts(plugin, spec) is None:
                problems.append(f"{spec} is not decorated with @seqgen.hookimpl, so it is never called")
        return problems

    def enable_plugin_tracing(self) -> None:
        """Log each hook call (with the plugins it calls and what they return), each
        registered plugin and each registered tokenizer to stderr (SEQGEN_TRACE_PLUGINS=1)."""
        self.trace.root.setwriter(lambda line: sys.stderr.write(f"seqgen-trace: {line}"))
        hooktrace = self.trace.root.get("hook")

        def before(hook_name, impls, kwargs):
            hooktrace("call", hook_name, "in plugin(s)", ", ".join(repr(i.plugin_name) for i in impls))

        def after(outcome, hook_name, impls, kwargs):
            if outcome.exception is None:
                hooktrace("finish", hook_name, "-->", outcome.get_result())
            else:
                hooktrace("finish", hook_name, "raised", repr(outcome.exception))

        self.add_hookcall_monitoring(before, after)

    # -- the tokenizers, checked -----------------------------------------------------------

    def registry(self) -> _Registry:
        """The checked tokenizer registry, collected once per set of registered plugins."""
        with self._lock:
            if self._registry is None:
                self._registry = self._collect()
            return self._registry

    def _collect(self) -> _Registry:
        reg = _Registry()
        names = [name for name, plugin in self.list_name_plugin() if plugin is not None]
        order = [n for n in names if n in self.builtin] + [n for n in names if n not in self.builtin]
        implementers = {impl.plugin_name for impl in self.hook.register_tokenizers.get_hookimpls()}
        for name in order:
            problems = reg.problems.setdefault(name, list(self.hook_problems.get(name, [])))
            if name not in implementers:
                continue
            classes, bad = self._call_register_tokenizers(name, problems)
            if bad:
                reg.disabled[name] = bad[0] + (f" (and {len(bad) - 1} more problem(s))" if len(bad) > 1 else "")
                for cls in classes:
                    reg.lost.setdefault(cls.name, name)
                dist = self.dists.get(name)
                _warn(name, f"disabled, its tokenizers are not available: {reg.disabled[name]}; fix the plugin"
                            + (f" or uninstall {dist}" if dist else ""))
                continue
            for cls in classes:
                if cls.name in reg.owner:
                    owner = reg.owner[cls.name]
                    kind = "built-in plugin" if owner in self.builtin else "plugin"
                    problem = (f"tokenizer {cls.name!r} is not used: the name belongs to {kind} {owner!r} "
                               f"(rename it, or uninstall one of the two)")
                    problems.append(problem)
                    _warn(name, problem)
                    continue
                cls._seqgen_plugin = name  # lets boundary errors name the plugin
                reg.owner[cls.name] = name
                reg.tokenizers[cls.name] = cls
                self.trace.root.get("seqgen")("registered tokenizer", repr(cls.name),
                                              f"({cls.__module__}.{cls.__qualname__}) from plugin", repr(name))
        return reg

    def _call_register_tokenizers(self, name: str, problems: list[str]) -> tuple[list[type[Tokenizer]], list[str]]:
        """Call one plugin's register_tokenizers: its valid classes, and what was wrong."""
        classes: list[type[Tokenizer]] = []
        bad: list[str] = []

        def register(cls):
            problem = _class_problem(cls)
            if problem:
                bad.append(problem)
            elif cls not in classes:
                classes.append(cls)

        plugin = self.get_plugin(name)
        caller = self.subset_hook_caller("register_tokenizers", [p for p in self.get_plugins() if p is not plugin])
        try:
            returned = caller(register=register)
        except Exception as e:  # a broken third-party plugin must not break seqgen
            return classes, [f"register_tokenizers raised {type(e).__name__}: {_one_line(e)}"]
        if returned:
            problem = (f"register_tokenizers returned {_show(returned[0])}, which is ignored: it must call "
                       f"register(cls) once for each tokenizer class instead")
            problems.append(problem)
            _warn(name, problem)
        return classes, bad


def _show(thing) -> str:
    if isinstance(thing, (list, tuple)):
        text = "[" + ", ".join(_show(item) for item in thing) + "]"
    else:
        text = thing.__name__ if isinstance(thing, type) else repr(thing)
    return text if len(text) <= 60 else text[:57] + "..."


def _class_problem(cls) -> str | None:
    """Why `cls` cannot be a tokenizer, or None."""
    if not (isinstance(cls, type) and issubclass(cls, Tokenizer)) or cls is Tokenizer:
        return f"registered {_show(cls)}, which is not a subclass of seqgen.Tokenizer"
    label = f"{cls.__module__}.{cls.__qualname__}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip():
        return f"registered {label} without a name (set the class attribute name = \"...\")"
    if inspect.isabstract(cls):
        return f"registered {label}, which does not implement {', '.join(sorted(cls.__abstractmethods__))}"
    if cls.output not in OUTPUTS:
        return f"{label}.output must be one of {', '.join(OUTPUTS)}, got {cls.output!r}"
    for attr in ("options", "write_options"):
        spec = getattr(cls, attr)
        if not isinstance(spec, dict) or not all(isinstance(k, str) and isinstance(v, Option) for k, v in spec.items()):
            return f"{label}.{attr} must map option names to seqgen.Option, got {_show(spec)}"
    if not isinstance(cls.suffixes, tuple) or not all(isinstance(s, str) for s in cls.suffixes):
        return f"{label}.suffixes must be a tuple of str, got {_show(cls.suffixes)}"
    return None


@dataclass(frozen=True)
class PluginInfo:
    """A plugin: its name, distribution version (None if unknown), the tokenizers it provides,
    why it is disabled (None if it is not), and its other problems."""

    name: str
    version: str | None
    tokenizers: tuple[str, ...]
    disabled: str | None = None
    problems: tuple[str, ...] = ()


def make_plugin_manager(load_entry_points: bool = True, *, only_builtin: bool = False,
                        trace: bool | None = None) -> PluginManager:
    """A new plugin manager with the installed plugins registered (only seqgen's own with
    `only_builtin`, none without `load_entry_points`). `trace`: None = SEQGEN_TRACE_PLUGINS."""
    pm = PluginManager(trace=trace)
    if load_entry_points:
        pm.load_entry_points(only_builtin=only_builtin)
    return pm


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loaded once: every installed plugin, or only the
    built-in ones when SEQGEN_PLUGINS=builtin."""
    choice = os.environ.get(PLUGINS_ENV, "").strip().lower() or "all"
    if choice not in PLUGIN_CHOICES:
        raise PluginError(f"{PLUGINS_ENV} must be one of {', '.join(PLUGIN_CHOICES)}, got {choice!r}")
    return _process_manager(choice, tracing())


@functools.lru_cache(maxsize=None)
def _process_manager(choice: str, trace: bool) -> PluginManager:
    return make_plugin_manager(only_builtin=choice == "builtin", trace=trace)


def get_tokenizers(pm: PluginManager | None = None) -> dict[str, type[Tokenizer]]:
    """Tokenizer name -> class of every usable tokenizer, sorted by name."""
    return dict(sorted((pm or get_plugin_manager()).registry().tokenizers.items()))


def _unavailable(pm: PluginManager, name: str) -> str:
    """Why tokenizer `name` may be missing: a disabled plugin, or plugins that failed to load."""
    reg = pm.registry()
    if name in reg.lost:
        return f"; plugin {reg.lost[name]!r} that provides it is disabled: {reg.disabled[reg.lost[name]]}"
    if pm.failed:
        return f"; plugin(s) that failed to load: {', '.join(sorted(pm.failed))}"
    return ""


def get_tokenizer(name: str, pm: PluginManager | None = None) -> type[Tokenizer]:
    """The tokenizer class registered as `name`; PluginError listing the known names if none."""
    pm = pm or get_plugin_manager()
    tokenizers = get_tokenizers(pm)
    if name not in tokenizers:
        raise PluginError(f"unknown tokenizer {name!r} (known: {', '.join(tokenizers) or 'none'})"
                          f"{_unavailable(pm, name)}")
    return tokenizers[name]


def tokenizer_from_dict(d: dict, pm: PluginManager | None = None) -> Tokenizer:
    """A fitted tokenizer from Tokenizer.to_dict() output (e.g. from a checkpoint)."""
    pm = pm or get_plugin_manager()
    name = d.get("name")
    tokenizers = get_tokenizers(pm)
    if name not in tokenizers:
        raise PluginError(
            f"tokenizer {name!r} (module {d.get('module', '?')}) is not installed; install the "
            f"seqgen plugin that provides it (installed: {', '.join(tokenizers) or 'none'})"
            f"{_unavailable(pm, name)}"
        )
    return tokenizers[name].from_dict(d)


def list_plugins(pm: PluginManager | None = None) -> list[PluginInfo]:
    """Every plugin, sorted by name, with its version, the tokenizers it provides, and, for
    one that failed to load or is disabled, why."""
    pm = pm or get_plugin_manager()
    reg = pm.registry()
    infos = [PluginInfo(name, pm.versions.get(name), (), why) for name, why in pm.failed.items()
             if not pm.has_plugin(name)]
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        version = pm.versions.get(name) or getattr(plugin, "__version__", None)
        names = tuple(sorted(tok for tok, owner in reg.owner.items() if owner == name))
        problems = tuple(reg.problems.get(name, ()))
        if name in pm.failed:  # registered, but a second package claims the same plugin name
            problems += (pm.failed[name],)
        infos.append(PluginInfo(name, version, names, reg.disabled.get(name), problems))
    return sorted(infos, key=lambda info: info.name)
