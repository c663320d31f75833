"""The Hugging Face libraries in offline mode, for reading local files and the local cache."""

from __future__ import annotations


class HubOffline:
    """Switch the Hugging Face libraries to offline mode for one block, so that reading a cached
    dataset opens no connection (by default `datasets` asks the hub for a newer version)."""

    def __enter__(self):
        import datasets.config
        import huggingface_hub.constants as hub

        self.saved = hub.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
        hub.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True

    def __exit__(self, *exc):
        import datasets.config
        import huggingface_hub.constants as hub

        hub.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = self.saved
