"""What the benchmark scripts share; each script in bench/ is a readable main on top of it.

    processes     BenchError, free ports, child process groups, readiness, open files, CPU split, peak RSS
    running       one run: temp directory, clean-up on every exit, exit statuses, --quick, the loop
    databases     scratch databases: a SQLite file, or a PostgreSQL database created and dropped
    deployment    one displayd under test (or replicas): settings, CLI, `serve` started, stopped, killed, logs
    api           the HTTP API as the scripts use it: timestamps, slogans, a campaign, /metrics
    boards        thousands of boards fast, through displayd's board service
    receiver      fake boards in a child process: fast, faulty (signature-checking), recording
    recorded      push boards with a lead on recording fake boards: set-up, slots measured, on time, duplicates
    pushes        push documents, signed requests, displayd's push client on loopback
    bare_aiohttp  the bare client baseline
    bare_asgi     the bare server baseline
    wrk           the HTTP load tool: found, scripted, its output read
    figures       percentiles, ratios, medians of rounds, met/MISSED

Import the modules themselves (`from bench.harness.receiver import start_receiver`), so a
reader sees from a script's imports which parts of the harness it stands on.
"""
