"""Plugin hooks of seqgen (pluggy project name ``seqgen``).

A plugin is a module exposed through the ``seqgen`` entry-point group that implements some of
the hooks below, each decorated with ``@seqgen.hookimpl``. Every hook is documented in
docs/plugins.md.
"""

import pluggy

hookspec = pluggy.HookspecMarker("seqgen")
hookimpl = pluggy.HookimplMarker("seqgen")


@hookspec
def register_tokenizers(register):
    """Provide tokenizer classes: call ``register(cls)`` once per ``seqgen.plugins.tokenizer.Tokenizer``
    subclass the plugin offers (what the hook returns is ignored). ``cls.name`` is the name users
    select it by. A plugin that registers anything else is disabled with a warning; a name that
    another plugin registered first (built-ins always come first) is not used."""
