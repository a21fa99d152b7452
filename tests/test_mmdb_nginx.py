"""End to end: a real nginx (Debian's nginx with libnginx-mod-http-geoip2) loads a MaxMind DB
that `Allowlist.export_mmdb` wrote and allows or denies requests whose client address the
realip module takes from X-Forwarded-For; every answer is compared with Allowlist.lookup().

nginx runs in the foreground with its own prefix, configuration, logs and temporary
directories under tmp_path, on a free loopback port, and is stopped by the test."""

from __future__ import annotations

import http.client
import ipaddress
import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ipallow import Allowlist

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
GEOIP2 = next((p for p in ("/usr/lib/nginx/modules/ngx_http_geoip2_module.so",
                           "/usr/share/nginx/modules/ngx_http_geoip2_module.so") if os.path.exists(p)), None)
pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx)"),
    pytest.mark.skipif(GEOIP2 is None, reason="nginx's geoip2 module is not installed "
                                              "(Debian: apt-get install libnginx-mod-http-geoip2)"),
]

CONF = """\
load_module {module};
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    # The client address is the test's to choose: trust X-Forwarded-For from loopback.
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    geoip2 {database} {{
        $allowlist_id source=$remote_addr id;
        $allowlist_owner source=$remote_addr owner;
    }}
    server {{
        listen 127.0.0.1:{port};
        default_type text/plain;
        location / {{
            if ($allowlist_id = "") {{ return 403 "denied $remote_addr\\n"; }}
            return 200 "allowed $allowlist_id $allowlist_owner\\n";
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_nginx(prefix: Path, database: Path) -> tuple[subprocess.Popen, int]:
    (prefix / "tmp").mkdir(exist_ok=True)
    for _ in range(5):                                 # the free port may be taken meanwhile
        port = _free_port()
        (prefix / "nginx.conf").write_text(CONF.format(module=GEOIP2, prefix=prefix, database=database,
                                                       port=port))
        process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                    "-e", str(prefix / "error.log")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return process, port
            except OSError:
                time.sleep(0.05)
        if process.poll() is None:
            process.kill()
        errors = process.communicate(timeout=10)[1].decode(errors="replace")
        if "Address already in use" not in errors:
            pytest.fail(f"nginx did not start: {errors}\n{(prefix / 'error.log').read_text(errors='replace')}")
    pytest.fail("nginx found no free loopback port")


def _ask(port: int, client: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"X-Forwarded-For": client})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_nginx_allows_exactly_the_registered_addresses(tmp_path):
    rng = random.Random(3)
    entries = [("10.0.0.0/8", {"id": "wide", "owner": "acme"}),
               ("10.1.0.0/16", {"id": "narrow", "owner": "globex"}),
               ("10.1.2.3/32", {"id": "host", "owner": "initech"}),
               ("203.0.113.0/24", {"id": "doc4", "owner": "acme"}),
               ("2001:db8::/32", {"id": "doc6", "owner": "globex"}),
               ("2001:db8:1::/48", {"id": "doc6-inner", "owner": "initech"})]
    for i in range(40):                                # and random nested ones
        network = ipaddress.ip_network(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
                                       f"/{rng.choice((20, 24, 28))}", strict=False)
        entries.append((network, {"id": f"r{i}", "owner": "random"}))
    allowlist = Allowlist(entries)
    database = tmp_path / "allow.mmdb"
    allowlist.export_mmdb(database)

    clients = {"10.1.2.3", "10.1.2.2", "10.1.2.4", "10.1.0.0", "10.0.255.255", "10.1.255.255", "10.2.0.0",
               "9.255.255.255", "11.0.0.0", "203.0.113.0", "203.0.113.255", "203.0.114.0",
               "2001:db8::1", "2001:db8:1::1", "2001:db8:2::", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
               "2001:db9::", "192.0.2.1", "::1"}
    for entry in allowlist:
        net = entry.networks[0]
        for value in (int(net.network_address) - 1, int(net.broadcast_address) + 1,
                      int(net.network_address), int(net.broadcast_address)):
            clients.add(str(type(net.network_address)(value)))

    process, port = _start_nginx(tmp_path, database)
    try:
        allowed = denied = 0
        for client in sorted(clients):
            status, body = _ask(port, client)
            match = allowlist.lookup(client)
            if match is None:
                assert status == 403, (client, status, body)
                denied += 1
            else:
                assert (status, body) == (200, f"allowed {match.data['id']} {match.data['owner']}\n"), client
                allowed += 1
        assert allowed > 20 and denied > 5
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
