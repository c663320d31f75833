"""The application: the services behind each command and the command line that renders them.

`api` (optimize, evaluate, show, report as Python functions: the one implementation the CLI calls
too), `running` (an optimize run: models, config.json, the method, result.json), `settings`
(options from the command line, config files and presets, validated before a model loads; a
resumed run's in `resuming`), `cli` and `cli_options` (click; the show, models/tasks and bench
commands in `cli_show`, `cli_catalog` and `cli_bench`), `progress`, `report` (the HTML report;
its plots in `report_plots`), `walltime` (the dry run's estimate) and `paper` (the paper's
headline figures). The bench (`gpo_local.quality`) sits on this layer too. May import every
layer below.
"""
