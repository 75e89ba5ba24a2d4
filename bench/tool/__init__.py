"""The benchmark tool behind `python -m bench` (see bench/README.md).

procs.py      processes, ports, limits, pinning, psutil CPU and RSS
backends.py   the NGINX backend (or the static_server.py stand-in)
configs.py    every generated config, as text
contenders.py the contenders: modes, what is missing, how each is run
scenarios.py  the scenarios and how each is measured
wrk.py        running wrk and parsing its output; paced.lua paces it
runner.py     interleaved rounds, fresh process per run
report.py     medians, ratios, the Markdown report
charts.py     the PNG charts (matplotlib, Agg)
micro.py      the pytest-benchmark and C micro benchmarks
machine.py    machine info and versions
cli.py        the command line"""
