"""`make run`'s path on the embedded defaults: `smsbot db upgrade`, `smsbot demo`, `smsbot run` serve
/healthz and answer an inbound SMS with a reply that the simulator logs as sent and reports delivered."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import requests

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_serves_health_and_replies_through_the_simulator(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL")}
    env["SMSBOT_INSTANCE_PATH"] = str(tmp_path)
    env["SMSBOT_ENV"] = "development"  # as `make run` sets it
    smsbot = [sys.executable, "-m", "wsgi"]
    for command in (["db", "upgrade"], ["db", "upgrade"], ["demo"]):
        subprocess.run(smsbot + command, env=env, cwd=ROOT, check=True, capture_output=True, timeout=60)
    port = free_port()
    log = (tmp_path / "run.log").open("w")
    server = subprocess.Popen(
        [*smsbot, "run", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                health = requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["redis"] == "ok"
        sms = {"id": "curl-1", "from": "+46731234567", "to": "+46700000001", "text": "SAVE Anna Berg vip"}
        assert (
            requests.post(
                f"{base}/webhooks/sim/inbound",
                data=json.dumps(sms),
                headers={"Content-Type": "application/json"},
                timeout=5,
            ).status_code
            == 200
        )
        output = ""
        for _ in range(150):
            output = (tmp_path / "run.log").read_text()
            if "POST /webhooks/sim/status" in output and "to +*******4567: Saved Anna Berg in vip." in output:
                break
            time.sleep(0.1)
        assert "simulator sim sends" in output and "to +*******4567: Saved Anna Berg in vip." in output, output
        assert "smsbot chat --number +46700000001" in output
        log_lines = [line for line in output.splitlines() if " INFO " in line or " WARNING " in line]
        assert log_lines and not [line for line in log_lines if "+46731234567" in line]  # masked in logs
        # Another command joins the embedded Redis meanwhile; it must not keep `run` from stopping it.
        subprocess.run([*smsbot, "worker", "--burst"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=60)
        redis_pid = embedded_redis_pid(tmp_path)
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
    assert not alive(redis_pid, within=5), "the embedded redis-server outlived `smsbot run`"


def embedded_redis_pid(instance) -> int:
    settings = json.loads((instance / "redis.db.settings").read_text())
    with open(settings["pidfile"]) as pidfile:
        return int(pidfile.read())


def alive(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.1)
    return True
