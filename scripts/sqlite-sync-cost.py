#!/usr/bin/env python3
# Commit latency of a one-row SQLite transaction in WAL mode under synchronous=NORMAL and FULL,
# alternating, on a scratch file in /tmp: the fsync a FULL commit adds (see BENCHMARKS.md, "The write").
import os
import sqlite3
import time
path="/tmp/syncbench.sqlite"
for p in [path, path+"-wal", path+"-shm"]:
    try: os.remove(p)
    except FileNotFoundError: pass
c=sqlite3.connect(path, isolation_level=None)
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, campaign INTEGER, donor TEXT, amount INTEGER, created INTEGER)")
c.execute("CREATE INDEX d1 ON d(campaign, created)"); c.execute("CREATE INDEX d2 ON d(donor)")
res={"NORMAL":[], "FULL":[]}
for i in range(4000):
    mode = "NORMAL" if i%2==0 else "FULL"
    c.execute(f"PRAGMA synchronous={mode}")
    t=time.perf_counter()
    c.execute("BEGIN IMMEDIATE"); c.execute("INSERT INTO d (campaign, donor, amount, created) VALUES (?,?,?,?)", (i%500, f"Donor {i%10000:05}", 1250, 1700000000+i)); c.execute("COMMIT")
    res[mode].append((time.perf_counter()-t)*1e6)
for m,v in res.items():
    v.sort(); print(m, "p50 %.0f us p99 %.0f us" % (v[len(v)//2], v[int(len(v)*0.99)]))
