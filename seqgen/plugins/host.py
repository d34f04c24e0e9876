"""The plugin manager: loads the `seqgen` entry-point group and collects tokenizers."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from importlib.metadata import distributions

import pluggy

from seqgen.errors import PluginError
from seqgen.plugins import hookspecs
from seqgen.plugins.tokenizer import Tokenizer

GROUP = "seqgen"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager for project "seqgen", remembering each plugin's distribution version."""

    def __init__(self) -> None:
        super().__init__(GROUP)
        self.add_hookspecs(hookspecs)
        self.versions: dict[str, str] = {}

    def load_entry_points(self) -> None:
        """Register every module of the `seqgen` entry-point group; one that fails to import
        or register is skipped with a warning naming it."""
        for dist in distributions():
            for ep in dist.entry_points:
                if ep.group != GROUP or self.has_plugin(ep.name) or self.is_blocked(ep.name):
                    continue
                try:
                    self.register(ep.load(), name=ep.name)
                except Exception as e:  # a broken third-party plugin must not break seqgen
                    warnings.warn(
                        f"seqgen plugin {ep.name!r} ({ep.value}, from {dist.name}) failed to load: "
                        f"{type(e).__name__}: {e}",
                        stacklevel=2,
                    )
                    continue
                self.versions[ep.name] = dist.version


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its name, distribution version (None if unknown) and tokenizer names."""

    name: str
    version: str | None
    tokenizers: tuple[str, ...]


def make_plugin_manager(load_entry_points: bool = True) -> PluginManager:
    """A new plugin manager, with the installed plugins registered unless told not to."""
    pm = PluginManager()
    if load_entry_points:
        pm.load_entry_points()
    return pm


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager (loaded once)."""
    return make_plugin_manager()


def _tokenizers_by_plugin(pm: PluginManager) -> dict[str, list[type[Tokenizer]]]:
    """Plugin name -> the tokenizer classes it registers, in call order."""
    found: dict[str, list[type[Tokenizer]]] = {}
    # Each implementation is called on its own so that every class is attributed to its plugin.
    for impl in reversed(pm.hook.register_tokenizers.get_hookimpls()):
        classes = found.setdefault(impl.plugin_name, [])

        def register(cls, _plugin=impl.plugin_name, _classes=classes):
            if not (isinstance(cls, type) and issubclass(cls, Tokenizer)):
                raise PluginError(f"plugin {_plugin!r} registered {cls!r}, which is not a Tokenizer subclass")
            if not isinstance(getattr(cls, "name", None), str) or not cls.name:
                raise PluginError(f"plugin {_plugin!r} registered {cls.__name__} without a name")
            _classes.append(cls)

        try:
            impl.function(*({"register": register}[arg] for arg in impl.argnames))
        except PluginError:
            raise
        except Exception as e:  # a broken third-party plugin must not break seqgen
            warnings.warn(
                f"seqgen plugin {impl.plugin_name!r} failed in register_tokenizers: "
                f"{type(e).__name__}: {e}",
                stacklevel=3,
            )
            found[impl.plugin_name] = []
    return found


def get_tokenizers(pm: PluginManager | None = None) -> dict[str, type[Tokenizer]]:
    """Tokenizer name -> class, sorted by name. PluginError if two plugins share a name."""
    pm = pm or get_plugin_manager()
    owners: dict[str, str] = {}
    result: dict[str, type[Tokenizer]] = {}
    for plugin, classes in _tokenizers_by_plugin(pm).items():
        for cls in classes:
            if cls.name in owners:
                raise PluginError(
                    f"tokenizer name {cls.name!r} is registered by two plugins: "
                    f"{owners[cls.name]!r} and {plugin!r}; uninstall one of them"
                )
            owners[cls.name] = plugin
            result[cls.name] = cls
    return dict(sorted(result.items()))


def get_tokenizer(name: str, pm: PluginManager | None = None) -> type[Tokenizer]:
    """The tokenizer class registered as `name`; PluginError listing the known names if none."""
    tokenizers = get_tokenizers(pm)
    if name not in tokenizers:
        raise PluginError(f"unknown tokenizer {name!r} (known: {', '.join(tokenizers) or 'none'})")
    return tokenizers[name]


def tokenizer_from_dict(d: dict, pm: PluginManager | None = None) -> Tokenizer:
    """A fitted tokenizer from Tokenizer.to_dict() output (e.g. from a checkpoint)."""
    name = d.get("name")
    tokenizers = get_tokenizers(pm)
    if name not in tokenizers:
        raise PluginError(
            f"tokenizer {name!r} (module {d.get('module', '?')}) is not installed; install the "
            f"seqgen plugin that provides it (installed: {', '.join(tokenizers) or 'none'})"
        )
    return tokenizers[name].from_dict(d)


def list_plugins(pm: PluginManager | None = None) -> list[PluginInfo]:
    """The registered plugins, sorted by name, with versions and the tokenizers they provide."""
    pm = pm or get_plugin_manager()
    by_plugin = _tokenizers_by_plugin(pm)
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        version = pm.versions.get(name) or getattr(plugin, "__version__", None)
        names = tuple(sorted(cls.name for cls in by_plugin.get(name, [])))
        infos.append(PluginInfo(name, version, names))
    return sorted(infos, key=lambda info: info.name)
