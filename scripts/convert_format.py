#!/usr/bin/env python3
"""Converts a combined (or common) access log into another format scrapemeter reads.

Usage: scripts/convert_format.py FORMAT [IN [OUT]]    (default: stdin → stdout)

FORMAT is one of: json, alb, cloudfront, vcombined, nginx-custom. Each line keeps
the client, time, method, target, status, user and user agent of the combined line, so
a scan of the output finds the same requests (the formats without a user field lose
it). nginx-custom lines are read with

    --format 'nginx:$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time host=$host'

(the NGINX_FORMAT constant below). Lines that are not combined are copied to stderr
and counted; the exit status is 1 if there were any. Used for docs/formats-speed.md.
"""

import datetime
import functools
import json
import re
import sys
import urllib.parse
import zlib

NGINX_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" rt=$request_time host=$host'
)
HOST = "example.social"

COMBINED = re.compile(
    rb'^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\S+)'
    rb'(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?'
)
MONTHS = {m: i + 1 for i, m in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}

CLOUDFRONT_FIELDS = ("date time x-edge-location sc-bytes c-ip cs-method cs(Host) "
                     "cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query")


@functools.lru_cache(maxsize=4096)
def utc(clf_time):
    """'02/Mar/2026:00:00:00 +0000' → an aware UTC datetime."""
    day, mon, rest = clf_time.split("/", 2)
    year, hh, mm, ss_zone = rest.split(":", 3)
    ss, zone = ss_zone.split(" ")
    sign = -1 if zone[0] == "-" else 1
    offset = datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
    local = datetime.datetime(int(year), MONTHS[mon], int(day), int(hh), int(mm), int(ss),
                              tzinfo=datetime.timezone(offset))
    return local.astimezone(datetime.timezone.utc)


class Stamps:
    """The time of one CLF time string in every written form (computed once)."""

    def __init__(self, clf_time):
        t = utc(clf_time)
        self.iso = t.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        self.alb = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.date = t.strftime("%Y-%m-%d")
        self.time = t.strftime("%H:%M:%S")


@functools.lru_cache(maxsize=4096)
def stamps(clf_time):
    return Stamps(clf_time)


def convert(fmt, m):
    remote, _, user, clf_time, request, status, size, referer, ua = (
        (g.decode("utf-8", "replace") if g is not None else None) for g in m.groups())
    referer = referer if referer is not None else "-"
    ua = ua if ua is not None else "-"
    parts = request.split(" ")
    method, target = (parts[0], parts[1]) if len(parts) in (2, 3) else ("-", "-")
    t = stamps(clf_time)
    if fmt == "vcombined":
        return f"{HOST}:443 {m.group(0).decode('utf-8', 'replace')}"
    if fmt == "nginx-custom":
        rt = "0.%03d" % (zlib.crc32(target.encode()) % 1000)
        return (f'{remote} - {user} [{clf_time}] "{request}" {status} {size} '
                f'"{referer}" "{ua}" rt={rt} host={HOST}')
    if fmt == "json":
        return json.dumps({
            "time_iso8601": t.iso,
            "remote_addr": remote,
            "remote_user": user,
            "request": request,
            "status": int(status),
            "body_bytes_sent": 0 if size == "-" else int(size),
            "http_referer": referer,
            "http_user_agent": ua,
            "host": HOST,
        }, separators=(",", ":"))
    if fmt == "alb":
        stamp = t.alb
        return (f"https {stamp} app/web-lb/50dc6c495c0c9188 {remote}:{40000 + int(status)} "
                f"10.0.0.1:80 0.000 0.001 0.000 {status} {status} 120 "
                f"{0 if size == '-' else size} "
                f'"{method} https://{HOST}:443{target} HTTP/1.1" "{ua}" '
                f"ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 "
                f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067 "
                f'"Root=1-58337262-36d228ad5d99923122bbe354" "{HOST}" "-" 0 '
                f'{stamp} "forward" "-" "-" "10.0.0.1:80" "200" "-" "-"')
    if fmt == "cloudfront":
        stem, _, query = target.partition("?")
        return "\t".join([
            t.date, t.time, "CDG50-P2",
            "0" if size == "-" else size, remote, method, "d111111abcdef8.cloudfront.net",
            stem, status, urllib.parse.quote(referer, safe=":/"),
            urllib.parse.quote(ua, safe="/;()"), query or "-",
        ])
    raise SystemExit(f"unknown format {fmt!r}")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in (
            "json", "alb", "cloudfront", "vcombined", "nginx-custom"):
        raise SystemExit(__doc__)
    fmt = sys.argv[1]
    src = open(sys.argv[2], "rb") if len(sys.argv) > 2 else sys.stdin.buffer
    dst = open(sys.argv[3], "w", encoding="utf-8") if len(sys.argv) > 3 else sys.stdout
    bad = 0
    if fmt == "cloudfront":
        dst.write("#Version: 1.0\n#Fields: " + CLOUDFRONT_FIELDS + "\n")
    for raw in src:
        m = COMBINED.match(raw.rstrip(b"\r\n"))
        if m is None:
            bad += 1
            sys.stderr.write(f"not combined: {raw!r}\n")
            continue
        dst.write(convert(fmt, m) + "\n")
    dst.close()
    if bad:
        sys.stderr.write(f"{bad} lines were not combined\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
