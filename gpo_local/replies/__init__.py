"""Replies: from an optimizer model's reply to a candidate prompt, or to a recorded reason why not.

`parsing` (the `<START>..<END>` tags and cleaning), `grammar` (GBNF grammars and word caps for
constrained replies), `leaks` (restated task examples, talk about the prompt), `drops` (one
reason per dropped reply) and `parser` (a step's replies to its candidates). Imports the models
layer (`gpo_local.backends`: the copy guard's token bans), runs, tasks and the core modules.
"""
