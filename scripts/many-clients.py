#!/usr/bin/env python3
"""Gzip combined log of many distinct clients, for measuring memory per client (README,
"Memory"): client i is 10.x.y.z (then 11.x.y.z, ... past 16,777,216), each with PER post requests at
distinct seconds of 10 Oct 2026, written client by client.

    python3 scripts/many-clients.py CLIENTS PER OUT.log.gz
    python3 scripts/many-clients.py 5000000 1 c5m.log.gz     # 5M clients, one request each
    python3 scripts/many-clients.py 10000 500 p10k.log.gz    # 10k clients x 500 instants
"""
import gzip
import sys

clients, per, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with gzip.open(out, "wt", compresslevel=1) as f:
    buf = []
    for i in range(clients):
        w, a, b, c = 10 + (i >> 24), (i >> 16) & 255, (i >> 8) & 255, i & 255
        for j in range(per):
            s = (i * 7 + j * 13) % 86400  # 13 is prime to 86400: distinct seconds
            buf.append('%d.%d.%d.%d - - [10/Oct/2026:%02d:%02d:%02d +0000] "POST /p HTTP/1.1" 200 1 "-" "a"\n'
                       % (w, a, b, c, s // 3600, s // 60 % 60, s % 60))
        if len(buf) > 100000:
            f.write("".join(buf))
            buf = []
    f.write("".join(buf))
