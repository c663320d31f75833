"""The algorithm: GPO's parts, named after their gradient-descent analogues (paper, section 3).

`config` (the option table and `GPOConfig`; the table's declarations, each with the dataclass
fields it declares, in `options_method`, `options_data`, `options_candidates` and
`options_runtime`, their vocabulary in `option`), `trajectory` (the optimizer state), `directions`
(which earlier prompts a step sees), `gradients` (feedback from wrong answers), `schedules` (the
edit budget, the step size), `updates` (the meta-prompt), `evaluator` (the loss: scores on a
split), `racing`, `budget` (optimizer calls per step), `method` (the loop every method shares,
`Method`, with `draws`, `candidates`, `usage` and `final`, its seeded draws, candidate records,
counters and end) and `optimizer` (`GPO`). Imports replies, backends, runs, tasks and the core
modules.
"""
