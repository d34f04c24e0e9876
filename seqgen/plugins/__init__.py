"""The plugin host: hook specifications, the plugin manager, and the Tokenizer interface."""
