"""gpo-local: the GPO prompt optimizer (Tang et al., 2024) on local GGUF models, offline.

Heavy dependencies (llama-cpp-python, torch, faiss) are imported lazily by the modules that
need them, so that `import gpo_local` and the pure strategy modules stay cheap.
"""

__version__ = "0.1.0"
